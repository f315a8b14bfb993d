"""The per-step parameter arrays (``param_values``, ``param_grads``): each read
touches only the array and the steps it asks for, each array keeps its own codec,
and migration 0009 moves 0008's ``steps`` columns there and back bit for bit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from gradtrace.engine import Value
from gradtrace.tracer.storage.codec import PLAIN, ZSTD, decode_matrix
from helpers.migrate import _alembic, _sql
from helpers.trace import NAN_SIGNALLING, bits

from gradtrace import tracer

N_PARAMS = 337  # the moons MLP: 2,696-byte arrays, below a 4 KB page, above ~1 KB
STEPS = 200


def _record(db: str, name: str = "arrays", steps: int = STEPS, dense: bool = False) -> None:
    """Values that do not compress, gradients that do (mostly zeros), so the two
    arrays of a step are stored in different codecs; ``dense``: random gradients,
    which do not compress either (a real run's)."""
    rng = np.random.default_rng(3)
    params = [Value(float(x)) for x in rng.standard_normal(N_PARAMS)]
    with tracer.record(name, db=db) as run:
        run.watch(params)
        for k in range(steps):
            noise = rng.standard_normal(N_PARAMS) if dense else None
            for i, p in enumerate(params):
                p.grad = float(noise[i]) if dense else float(k) if i == k % N_PARAMS else 0.0
            params[1].grad = NAN_SIGNALLING if k == 7 else 0.0
            params[2].data = -0.0 if k == 9 else params[2].data
            run.log(float(k))
            for p in params:
                p.data -= 0.01 * p.grad if p.grad == p.grad else 0.0


def _arrays(db: str, name: str = "arrays") -> dict[str, list[int]]:
    with tracer.connect(db, readonly=True) as store:
        view = store.run(name)
        return {
            "values": bits(view.values().to_numpy().ravel()).tolist(),
            "gradients": bits(view.gradients().to_numpy().ravel()).tolist(),
            "index": view.values().index.tolist(),
            "strided": bits(view.gradients(steps=range(3, STEPS, 7)).to_numpy().ravel()).tolist(),
        }


def test_each_array_keeps_its_own_codec(db_url):
    _record(db_url)
    values = _sql(db_url, "SELECT DISTINCT codec FROM param_values")
    grads = _sql(db_url, "SELECT DISTINCT codec FROM param_grads")
    assert [tuple(r) for r in values] == [(PLAIN,)]
    assert [tuple(r) for r in grads] == [(ZSTD,)]
    got = _arrays(db_url)
    assert got["index"] == list(range(STEPS))
    with tracer.connect(db_url, readonly=True) as store:
        grad = store.run("arrays").gradients()
    assert grad.iloc[5, 5] == 5.0 and grad.iloc[5].abs().sum() == 5.0
    assert bits(grad.iloc[7, [1]]).tolist() == bits([NAN_SIGNALLING]).tolist()


def test_0008_and_back_bit_for_bit(db_url):
    """Down to 0008 both arrays go back into the steps row (a step whose arrays were
    encoded differently is stored plain, the one codec 0008 keeps per row); up
    again, every read gives the same bits as before."""
    _record(db_url)
    before = _arrays(db_url)
    _alembic(db_url, lambda cfg: command.downgrade(cfg, "0008"))
    rows = _sql(db_url, "SELECT param_data, param_grad, codec FROM steps ORDER BY step")
    assert {r[2] for r in rows} == {PLAIN}
    data = decode_matrix([r[0] for r in rows], [r[2] for r in rows], N_PARAMS)
    grad = decode_matrix([r[1] for r in rows], [r[2] for r in rows], N_PARAMS)
    assert bits(data.ravel()).tolist() == before["values"]
    assert bits(grad.ravel()).tolist() == before["gradients"]
    _alembic(db_url, lambda cfg: command.upgrade(cfg, "head"))
    assert _arrays(db_url) == before
    _alembic(db_url, lambda cfg: command.check(cfg))


def test_upgrade_copies_the_stored_bytes_and_codecs(db_url):
    """A step stored at 0008 in zstd keeps its exact frame in both new tables."""
    _record(db_url, steps=3)
    _alembic(db_url, lambda cfg: command.downgrade(cfg, "0008"))
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE steps SET param_data = :x, param_grad = :y, codec = 7"),
                {"x": b"\x00", "y": b"\x01"},
            )
    finally:
        engine.dispose()
    _alembic(db_url, lambda cfg: command.upgrade(cfg, "head"))
    assert [tuple(r) for r in _sql(db_url, "SELECT codec, data FROM param_values")] == [
        (7, b"\x00")
    ] * 3
    assert [tuple(r) for r in _sql(db_url, "SELECT codec, grad FROM param_grads")] == [
        (7, b"\x01")
    ] * 3
    with (
        tracer.connect(db_url, readonly=True) as store,
        pytest.raises(tracer.GradtraceError, match="codec 7, unknown"),
    ):
        store.run("arrays").values()


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_a_read_touches_only_its_array_and_steps(sqlite_path):
    """Bytes SQLite reads (``rchar``: every read() of the file, cached by the system
    or not) stay within 2x of what a read returns, for all steps and for every 10th
    step, of either array (both plain here, as a real run's are). With both arrays
    in one clustered row it read 3x and 30x."""
    db, steps_logged = str(sqlite_path), 1000
    _record(db, steps=steps_logged, dense=True)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for which in ("grad", "data"):
        for steps in (None, range(0, steps_logged, 10)):
            with tracer.connect(db, readonly=True) as store:
                view = store.run("arrays")
                view.parameters()
                # The open's quick_check of a small file leaves every page in the
                # pooled connection's cache: read on a fresh connection.
                store.engine.dispose()
                before = _rchar()
                frame = view.param_arrays(steps=steps, which=which)
                read = _rchar() - before
            returned = frame.to_numpy().nbytes
            assert len(frame) == (steps_logged if steps is None else len(steps))
            assert returned <= read < 2 * returned, (which, steps, read, returned)


def test_steps_stays_clustered_after_the_upgrade(sqlite_path):
    db = str(sqlite_path)
    _record(db, steps=2)
    url = f"sqlite:///{db}"
    _alembic(url, lambda cfg: command.downgrade(cfg, "0008"))
    _alembic(url, lambda cfg: command.upgrade(cfg, "head"))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            sql = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master").all())
    finally:
        engine.dispose()
    assert "WITHOUT ROWID" in sql["steps"]
    assert "WITHOUT ROWID" not in sql["param_values"] + sql["param_grads"]
    assert "ix_steps_summary" not in sql
