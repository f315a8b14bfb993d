"""Helpers shared by the recorder, reliability and migration tests (not a test module).

The small training run here is deterministic (seeded model and data), so a test
can replay in-process exactly what a recording subprocess computed and compare
what the database holds with it bit for bit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from gradtrace.engine import MLP, SGD, Adam, AdamW, Value, make_moons
from gradtrace.tracer.recording.demo import moons_loss

from gradtrace import tracer

TESTS = Path(__file__).resolve().parent.parent
N_POINTS = 20


def bits(values) -> np.ndarray:
    """float64 values as their uint64 bit patterns (NaN payloads and -0.0 included)."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64)


def fbits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits(u: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", u))[0]


# NaN with a payload, a negative NaN, a signalling NaN: all must survive as they are.
NAN_PAYLOAD = from_bits(0x7FF8_0000_DEAD_BEEF)
NAN_NEGATIVE = from_bits(0xFFF8_0000_0000_0000)
NAN_SIGNALLING = from_bits(0x7FF0_0000_0000_0001)
SPECIALS = [
    float("nan"),
    NAN_PAYLOAD,
    NAN_NEGATIVE,
    NAN_SIGNALLING,
    float("inf"),
    float("-inf"),
    -0.0,
    0.0,
    5e-324,
    1.5,
]


def small_model(seed: int = 0, n: int = N_POINTS):
    """MLP(2, [4, 1]) and ``n`` moons points."""
    X, y = make_moons(n, noise=0.1, seed=seed)
    return MLP(2, [4, 1], seed=seed), X, y


def make_optimizer(kind: str, model: MLP):
    if kind == "sgd":
        return SGD(model.parameters(), lr=lambda k: 0.5 / (1 + k))
    if kind == "adam":
        return Adam(model.parameters(), lr=0.05)
    if kind == "adamw":
        return AdamW(model.parameters(), lr=lambda k: 0.05 / (1 + k), weight_decay=0.1)
    if kind == "hand":
        return None
    raise ValueError(kind)


def batch_loss(model: MLP, X, y, batch: range | None = None):
    if batch is not None:
        X, y = X[batch.start : batch.stop], y[batch.start : batch.stop]
    return moons_loss(model, X, y)


@dataclass
class StepRecord:
    """What a step looked like in-process, taken at log time (and after the update)."""

    loss: float
    acc: float
    lr: float | None
    node_data: np.ndarray  # uint64 bits, topo order
    node_grad: np.ndarray
    n_nodes: int
    before: np.ndarray  # float64 parameter values at log time
    grad: np.ndarray
    after: np.ndarray = field(default_factory=lambda: np.empty(0))


def snapshot(loss: Value, params) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    nodes = loss.topo()
    return (
        bits([v.data for v in nodes]),
        bits([v.grad for v in nodes]),
        len(nodes),
        np.array([p.data for p in params], dtype=np.float64),
        np.array([p.grad for p in params], dtype=np.float64),
    )


def train(
    steps: int | None,
    run=None,
    *,
    seed: int = 0,
    opt: str = "sgd",
    batches: list[range] | None = None,
    delay: float = 0.0,
    raise_at: int | None = None,
) -> Iterator[StepRecord]:
    """The reference training loop: yields each step's record after its update.

    With ``run``, each step is logged (loss, acc, and lr for hand-written updates).
    Used unchanged by the recording subprocesses and by tests replaying them.
    """
    model, X, y = small_model(seed)
    params = model.parameters()
    optimizer = make_optimizer(opt, model)
    if run is not None:
        run.watch(model, optimizer=optimizer)
    k = 0
    while steps is None or k < steps:
        batch = batches[k % len(batches)] if batches else None
        loss, acc = batch_loss(model, X, y, batch)
        model.zero_grad()
        loss.backward()
        if raise_at == k:
            raise ValueError(f"boom at step {k}")
        lr = optimizer.lr if optimizer is not None else 0.1 / (1 + k)
        data, grad, n, before, pgrad = snapshot(loss, params)
        rec = StepRecord(loss.data, acc, lr, data, grad, n, before, pgrad)
        if run is not None:
            if optimizer is None:
                run.log(loss, acc=acc, lr=lr)
            else:
                run.log(loss, acc=acc)
        if optimizer is not None:
            optimizer.step()
        else:
            for p in params:
                p.data += -lr * p.grad
        rec.after = np.array([p.data for p in params], dtype=np.float64)
        yield rec
        k += 1
        if delay:
            time.sleep(delay)


def replay(steps: int, **kwargs) -> list[StepRecord]:
    return list(train(steps, **kwargs))


# -- subprocesses -------------------------------------------------------------

CHILD = """\
import json, os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
opts = json.loads(sys.argv[1])
sys.path.insert(0, opts["tests"])
from gradtrace import tracer
from helpers.trace import train

if opts.get("go"):
    print("ready", flush=True)
    while not os.path.exists(opts["go"]):
        time.sleep(0.001)

def steps(run):
    for k, _ in enumerate(train(opts["steps"], run, seed=opts["seed"], delay=opts["delay"],
                                raise_at=opts["raise_at"])):
        if opts.get("echo"):
            print(k, flush=True)  # log(k) has returned

record_kwargs = dict(db=opts["db"])
if opts["background"] is not None:  # None: the recorder's default (the background writer)
    record_kwargs["background"] = opts["background"]
mode = opts["mode"]
if mode == "with":
    with tracer.record(opts["name"], **record_kwargs) as run:
        steps(run)
elif mode == "bare":  # a module-level run that is never closed
    run = tracer.record(opts["name"], **record_kwargs)
    steps(run)
elif mode == "function":  # the last reference to the run goes away with main()
    def main():
        steps(tracer.record(opts["name"], **record_kwargs))
    main()
    import gc
    gc.collect()
print("done", flush=True)
"""


def start_child(
    tmp_path: Path,
    db: str,
    name: str,
    *,
    steps: int | None,
    mode: str = "with",
    seed: int = 0,
    background: bool | None = None,
    delay: float = 0.0,
    raise_at: int | None = None,
    go: Path | None = None,
    echo: bool = False,
) -> subprocess.Popen:
    """Start a Python process that records the reference training into ``db``;
    ``echo`` prints each step's number once its ``log()`` has returned."""
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    opts = {
        "tests": str(TESTS),
        "db": db,
        "name": name,
        "steps": steps,
        "mode": mode,
        "seed": seed,
        "background": background,
        "delay": delay,
        "raise_at": raise_at,
        "go": str(go) if go else None,
        "echo": echo,
    }
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(opts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_ready(procs: list[subprocess.Popen], timeout: float = 60) -> None:
    """Wait until every child printed "ready" (imports done, waiting for the go file)."""
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            _, out, err = finish(proc, timeout)
            raise AssertionError(f"child did not get ready: {line!r}\n{out}\n{err}")


def committed_steps(engine: sa.Engine, name: str) -> int:
    """Steps committed for run ``name`` so far (0 while the schema or the run is missing)."""
    try:
        with engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT count(*) FROM steps JOIN runs USING (run_key) WHERE name = :n"),
                {"n": name},
            ).scalar()
    except sa.exc.DBAPIError:
        return 0
    return int(value or 0)


def poll_steps(
    db: str, name: str, at_least: int, proc: subprocess.Popen, timeout: float = 60
) -> int:
    """Poll the database until ``at_least`` steps of ``name`` are committed."""
    url = db if "://" in db else f"sqlite:///{db}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            n = committed_steps(engine, name)
            if n >= at_least:
                return n
            if proc.poll() is not None:
                err = finish(proc)[2]
                raise AssertionError(f"recording process ended early ({proc.returncode}):\n{err}")
            time.sleep(0.02)
    finally:
        engine.dispose()
    proc.kill()
    raise AssertionError(f"{name}: fewer than {at_least} steps committed after {timeout}s")


# -- reading back -------------------------------------------------------------


def table_counts(engine: sa.Engine, run_key: int) -> dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for table in ("steps", "metrics", "updates", "traces", "graphs", "parameters"):
            out[table] = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE run_key = :k"), {"k": run_key}
            ).scalar()
    return out


def assert_steps_match(view, expected: list[StepRecord], *, traced: bool = True) -> None:
    """Node traces, metrics, parameter arrays and updates of ``view`` equal ``expected``
    for every step, bit for bit; the last step's update is checked when present."""
    n = len(expected)
    steps = view.steps()
    assert steps.index.tolist() == list(range(n))
    metrics = view.metrics()
    assert metrics.index.tolist() == list(range(n))
    assert (bits(metrics["loss"]) == bits([r.loss for r in expected])).all()
    assert (bits(metrics["acc"]) == bits([r.acc for r in expected])).all()
    values, grads = view.values(), view.gradients()
    assert (bits(values.to_numpy()) == bits(np.stack([r.before for r in expected]))).all()
    assert (bits(grads.to_numpy()) == bits(np.stack([r.grad for r in expected]))).all()
    if traced:
        for k, rec in enumerate(expected):
            nodes = view.nodes(k)
            assert len(nodes) == rec.n_nodes, k
            assert (bits(nodes["value"]) == rec.node_data).all(), f"values of step {k}"
            assert (bits(nodes["grad"]) == rec.node_grad).all(), f"grads of step {k}"
    updates = view.updates()
    for k, rec in enumerate(expected):
        u = updates[updates["step"] == k].sort_values("param")
        if k == n - 1 and u.empty:
            continue  # the last update is written on close; a killed run has none
        assert len(u) == len(rec.before), k
        assert (bits(u["value_before"]) == bits(rec.before)).all(), k
        assert (bits(u["grad"]) == bits(rec.grad)).all(), k
        if k < n - 1:
            assert (bits(u["value_after"]) == bits(rec.after)).all(), k


def refusing_step(path: Path | str, step: int) -> None:
    """A gradtrace database at ``path`` whose ``steps`` table refuses step ``step``, and
    only it (a trigger): the database error a writer meets mid-run."""
    tracer.record("setup", db=path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"CREATE TRIGGER no{step} BEFORE INSERT ON steps WHEN NEW.step = {step} "
            f"BEGIN SELECT RAISE(ABORT, 'step {step} refused'); END"
        )
    conn.close()
