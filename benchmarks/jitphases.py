"""Where a recorded jit step's time goes: the training thread's run.log() and the writer.

    python benchmarks/jitphases.py                    # SQLite, 60 paired steps
    python benchmarks/jitphases.py --pg postgresql+psycopg://root@127.0.0.1:5432/test

The pairing of ``recorder.py --jit`` (an untraced replayed moons step, then a
traced one, alternating in one process), with the recorder's and the writer's
functions wrapped to sum each one's CPU time (``time.thread_time``, the calling
thread's) and wall time per step. Prints one table: every phase of the training
thread's ``run.log()``, every phase of the writer thread, and the replayed step's
own CPU and wall time, untraced and traced (a traced step whose replay takes
longer in wall time than in CPU waited for the GIL or a core).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from gradtrace.engine import MLP, make_moons
from gradtrace.tracer import record
from gradtrace.tracer.recording import grouped as gr_mod
from gradtrace.tracer.recording import recorder as rec_mod
from gradtrace.tracer.recording import writer as wr_mod
from recorder import jit_loss, pg_schema, sgd_step

CPU: dict[str, float] = collections.defaultdict(float)
WALL: dict[str, float] = collections.defaultdict(float)


def timed(name: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, summing its thread CPU and wall time under ``name`` (or ``name(*args)``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0, t0 = time.thread_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            key = name if isinstance(name, str) else name(*args)
            CPU[key] += time.thread_time() - c0
            WALL[key] += time.perf_counter() - t0

    return wrapper


def instrument() -> None:
    """Wrap the recorder's and the writer's phases (module globals and methods)."""
    for fn in (
        "snapshot",
        "read_params",
        "update_rows",
        "metric_row",
        "nonfinite_step",
        "_as_float",
        "check",
        "deferred_signals",
    ):
        setattr(rec_mod, fn, timed(f"log: {fn}", getattr(rec_mod, fn)))
    wr_mod.group_rows = timed("writer: group_rows", wr_mod.group_rows)
    for fn in ("encode_pair", "encode_array"):
        setattr(gr_mod, fn, timed(f"writer: {fn}", getattr(gr_mod, fn)))
    rec_mod.Recorder.log = timed("log: total", rec_mod.Recorder.log)
    rec_mod.Recorder._take_updates = timed("log: _take_updates", rec_mod.Recorder._take_updates)
    rec_mod.LiveCheck.logged = timed("log: LiveCheck.logged", rec_mod.LiveCheck.logged)
    W = wr_mod.Writer
    write = timed("writer: _write (transaction)", W._write)

    def counted(self: Any, items: list[Any]) -> None:
        GROUPS.append(len(items))
        write(self, items)

    W._write = counted
    W._steps = timed("writer: _steps", W._steps)
    W._graph = timed("writer: _graph", W._graph)
    wr_mod._Statements.insert = timed(
        lambda self, conn, model, rows: f"writer: insert {model.__tablename__}",
        wr_mod._Statements.insert,
    )
    wr_mod.BackgroundWriter.submit = timed("log: submit", wr_mod.BackgroundWriter.submit)
    wr_mod.Writer.submit = timed("log: submit", wr_mod.Writer.submit)


def experiment(only: str) -> None:
    """Replace the writer's step writes by a part of them (what the rest costs)."""

    def steps(self: Any, conn: Any, batches: list[Any]) -> None:
        if only == "encode":
            for b in batches:
                if b.snapshot is not None:
                    gr_mod.encode_pair(b.snapshot.data, b.snapshot.grad, self.codec)
        elif only == "rows":
            gr_mod.group_rows(self.run_key, batches, self.codec)

    wr_mod.Writer._steps = timed("writer: _steps", steps)


GROUPS: list[int] = []


def run(steps: int, db: str, background: bool) -> dict[str, Any]:
    X, y = make_moons(100, noise=0.1, seed=1)
    plain, traced = MLP(2, [16, 16, 1], seed=1337), MLP(2, [16, 16, 1], seed=1337)
    f_plain, f_traced = jit_loss(plain, y), jit_loss(traced, y)
    out: dict[str, list[float]] = collections.defaultdict(list)
    with record("phases", db=db, background=background) as run:
        run.watch(traced)
        for k in range(steps + 2):
            if k == 2:
                CPU.clear()
                WALL.clear()
                GROUPS.clear()
                p0 = time.process_time()
            c0, t0 = time.thread_time(), time.perf_counter()
            loss = f_plain(X)
            plain.zero_grad()
            loss.backward()
            sgd_step(plain, k, steps)
            c1, t1 = time.thread_time(), time.perf_counter()
            loss2 = f_traced(X)
            traced.zero_grad()
            loss2.backward()
            c2, t2 = time.thread_time(), time.perf_counter()
            run.log(loss2, lr=1.0 - 0.9 * k / steps)
            sgd_step(traced, k, steps)
            c3, t3 = time.thread_time(), time.perf_counter()
            if loss.data != loss2.data:
                sys.exit(f"step {k}: traced loss {loss2.data!r} != untraced {loss.data!r}")
            if k >= 2:
                out["plain cpu"].append(c1 - c0)
                out["plain wall"].append(t1 - t0)
                out["replay cpu"].append(c2 - c1)
                out["replay wall"].append(t2 - t1)
                out["traced cpu"].append(c3 - c1)
                out["traced wall"].append(t3 - t1)
        t_close = time.perf_counter()
    p_all = time.process_time() - p0
    return {
        "series": out,
        "cpu": dict(CPU),
        "wall": dict(WALL),
        "close": time.perf_counter() - t_close,
        "process": p_all,
    }


def table(label: str, r: dict[str, Any], steps: int) -> None:
    s = r["series"]
    med = {k: statistics.median(v) * 1e3 for k, v in s.items()}
    print(f"\n{label}  (load {os.getloadavg()[0]:.2f}; ms per step)")
    print("| phase | CPU ms | wall ms |")
    print("|---|---:|---:|")
    for what in ("plain", "replay", "traced"):
        print(f"| step: {what} (median) | {med[what + ' cpu']:.2f} | {med[what + ' wall']:.2f} |")
    ratio_cpu = med["traced cpu"] / med["plain cpu"]
    ratio_wall = med["traced wall"] / med["plain wall"]
    print(f"| step: traced / plain | {ratio_cpu:.3f}x | {ratio_wall:.3f}x |")
    for key in sorted(r["cpu"]):
        print(f"| {key} | {r['cpu'][key] / steps * 1e3:.3f} | {r['wall'][key] / steps * 1e3:.3f} |")
    plain = sum(s["plain cpu"])
    print(
        f"| process CPU over the paired steps, minus the untraced steps | "
        f"{(r['process'] - plain) / steps * 1e3:.2f} | |"
    )
    print(f"| close() (wall, once) | | {r['close'] * 1e3:.1f} |")
    print(f"\nwriter transactions: {len(GROUPS)}, steps each: {collections.Counter(GROUPS)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pg", default=None)
    ap.add_argument("--sync", action="store_true", help="the synchronous writer")
    ap.add_argument(
        "--only",
        choices=("none", "encode", "rows"),
        help="an experiment: the writer stores nothing, and does nothing (none), only "
        "encodes (encode) or builds every row without inserting it (rows)",
    )
    args = ap.parse_args()
    instrument()
    if args.only:
        experiment(args.only)
    bg = not args.sync
    with tempfile.TemporaryDirectory() as tmp:
        if args.pg:
            with pg_schema(args.pg) as url:
                r = run(args.steps, url, bg)
            label = "PostgreSQL"
        else:
            r = run(args.steps, str(Path(tmp) / "p.db"), bg)
            label = "SQLite"
    table(f"{label}, {'background' if bg else 'sync'} writer", r, args.steps)


if __name__ == "__main__":
    main()
