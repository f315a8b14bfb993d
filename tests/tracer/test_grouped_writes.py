"""The writer's bulk form (tracer/recording/grouped.py): a group of steps written in one
transaction, one statement per table, stores exactly the rows step-by-step writes store.

Each test with ``db_url`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
import threading
import time

import sqlalchemy as sa
from gradtrace.engine import MLP, SGD, hinge, jit, l2, make_moons
from gradtrace.tracer.recording import writer as writer_mod
from gradtrace.tracer.recording.writer import BackgroundWriter, StepBatch

from gradtrace import tracer

SIZES = [20, 20, 10, 20, 20, 20, 10, 10, 20, 20, 20, 20]  # two graph shapes, mixed in groups
TABLES = {  # every stored column but the keys and times that differ between two runs
    "steps": "step, first_nonfinite",
    "metrics": "name, step, value, raw",
    "updates": "param, step, value_before, grad, value_after, lr, raw",
    "traces": "step, data, grad, codec, crc",
    "param_values": "step, data, codec, crc",
    "param_grads": "step, grad, codec, crc",
    "run_metrics": "name, last_step, last_value, last_raw, min_value, max_value",
}
ODD = [-0.0, math.nan, 1.5]  # metric values whose bits go to the raw column


def record(db_url: str, name: str, background: bool) -> str:
    """A jit moons run (337 parameters: more update rows a step than one statement holds)."""
    X, y = make_moons(20, noise=0.1, seed=4)
    model = MLP(2, [16, 16, 1], seed=5)
    opt = SGD(model.parameters(), lr=0.3)

    def loss(X, y):
        return hinge([model(x) for x in X], y) + l2(model.parameters(), 1e-3)

    fn = jit(loss, check_every=4)
    with tracer.record(name, db=db_url, background=background) as run:
        run.watch(model, optimizer=opt)
        for k, n in enumerate(SIZES):
            root = fn(X[:n], y[:n])
            model.zero_grad()
            root.backward()
            run.log(root, odd=ODD[k % 3])
            opt.step()
    return run.id


def stored(db_url: str, run_id: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        find = sa.text("SELECT run_key FROM runs WHERE id = :i")
        key = conn.execute(find, {"i": run_id}).scalar()
        out = {
            table: [
                tuple(bytes(x) if isinstance(x, memoryview) else x for x in r)
                for r in conn.execute(
                    sa.text(f"SELECT {cols} FROM {table} WHERE run_key = :k ORDER BY {cols}"),
                    {"k": key},
                )
            ]
            for table, cols in TABLES.items()
        }
        out["runs"] = conn.execute(
            sa.text("SELECT steps, first_nonfinite_step FROM runs WHERE run_key = :k"), {"k": key}
        ).all()
    engine.dispose()
    return out


def test_grouped_steps_store_the_rows_step_by_step_writes_store(db_url, monkeypatch):
    one_by_one = record(db_url, "sync", background=False)  # a transaction a step
    groups: list[int] = []
    write = BackgroundWriter._write

    def spy(self, items):
        groups.append(len(items))
        write(self, items)

    monkeypatch.setattr(BackgroundWriter, "_write", spy)
    monkeypatch.setattr(writer_mod, "LINGER_S", 30.0)  # a group waits for its 8 steps
    grouped = record(db_url, "grouped", background=True)
    assert groups[0] >= 8, groups  # steps 0-7 (and any queued since) in one transaction
    assert sum(groups) == len(SIZES) + 1  # and the run's end
    a, b = stored(db_url, one_by_one), stored(db_url, grouped)
    assert len(a["updates"]) == 337 * len(SIZES) and len(a["traces"]) == len(SIZES)
    assert [r[0] for r in a["runs"]] == [len(SIZES)]
    for table in a:
        assert a[table] == b[table], table


def test_the_background_writer_waits_for_a_group_of_steps():
    """Steps logged in quick succession share one transaction (up to half the permits),
    where the writer used to commit each step as soon as it arrived."""
    groups: list[int] = []
    done = threading.Event()

    class Counting(BackgroundWriter):
        def _write(self, items):
            groups.append(len(items))
            if sum(groups) >= 8:
                done.set()

    writer = Counting(sa.create_engine("sqlite://"), run_key=1, queue_size=16, linger=30.0)
    for k in range(8):
        writer.submit(StepBatch(step=k, wall_time=0.0))
        time.sleep(0.005)  # a step every 5 ms: the writer is idle when each arrives
    assert done.wait(10)
    writer.close()
    assert groups == [8]


def test_a_lone_step_is_committed_after_the_linger():
    committed = threading.Event()

    class Once(BackgroundWriter):
        def _write(self, items):
            committed.set()

    writer = Once(sa.create_engine("sqlite://"), run_key=1, linger=0.05)
    writer.submit(StepBatch(step=0, wall_time=0.0))
    assert committed.wait(5)  # not held until a group fills
    writer.close()
