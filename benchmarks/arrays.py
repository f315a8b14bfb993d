"""Bytes read for the per-step parameter arrays, against the bytes returned.

    python benchmarks/arrays.py                       # records a 10,000-step run (~1 min)
    python benchmarks/arrays.py --db big.db --old old.db

The run is ``benchmarks/bigrun.py``'s (10,000 steps, 337 parameters). The old layout
(schema 0008: both arrays in one clustered ``steps`` row) is read with the query the
0008 code ran, on ``--old`` (a file written at 0008) or on a copy of the run taken
down to 0008 with ``alembic downgrade``; the new one through ``RunView`` on the
file as recorded and on that copy upgraded again (what ``gradtrace db upgrade``
leaves). Bytes read are ``rchar`` of ``/proc/self/io`` (every ``read()``/``pread()``
SQLite makes, page cache or not) over one read on a fresh connection; the peer is
what the read returns (steps x parameters x 8 bytes).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from alembic import command
from bigrun import make_big_run
from gradtrace.tracer.storage.codec import decode_matrix
from gradtrace.tracer.storage.db import alembic_config

from gradtrace import tracer

STRIDE = 10


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def measured(fn: Callable[[], np.ndarray]) -> tuple[int, int, float]:
    """(bytes read, bytes returned, ms) of one call."""
    before, t0 = rchar(), time.perf_counter()
    out = fn()
    ms = (time.perf_counter() - t0) * 1e3
    return rchar() - before, int(np.asarray(out).nbytes), ms


def old_read(db: Path, column: str, stride: int = 1) -> tuple[int, int, float]:
    """The 0008 code's read of one array column (``RunView.param_arrays``), raw."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA cache_size = -65536")  # what gradtrace sets
        (n,) = conn.execute("SELECT count(*) FROM parameters WHERE run_key = 1").fetchone()
        where = "" if stride == 1 else f" AND (step - 0) % {stride} = 0"

        def read() -> np.ndarray:
            rows = conn.execute(
                f"SELECT step, {column}, codec FROM steps WHERE run_key = 1 AND step >= 0"
                f"{where} AND {column} IS NOT NULL ORDER BY step"
            ).fetchall()
            return decode_matrix([r[1] for r in rows], [r[2] for r in rows], n)

        return measured(read)
    finally:
        conn.close()


def new_read(db: Path, which: str, stride: int = 1) -> tuple[int, int, float]:
    store = tracer.connect(db, readonly=True)
    try:
        view = store.run("big")
        view.parameters()  # the names, read once per view: not the array read
        steps = None if stride == 1 else range(0, view.info["steps"], stride)
        return measured(lambda: view.param_arrays(steps=steps, which=which).to_numpy())
    finally:
        store.close()


def downgraded_copy(src: Path, dst: Path, revision: str) -> None:
    shutil.copy(src, dst)
    engine = sa.create_engine(f"sqlite:///{dst}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a run recorded by benchmarks/bigrun.py at today's schema")
    ap.add_argument("--old", help="the same kind of run written at schema 0008")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db or Path(tmp) / "big.db")
        if not db.exists():
            make_big_run(str(db))
        old = Path(args.old) if args.old else Path(tmp) / "old.db"
        if not args.old:
            downgraded_copy(db, old, "0008")
        upgraded = Path(tmp) / "upgraded.db"
        downgraded_copy(old, upgraded, "0008")  # a copy, still at 0008
        tracer.connect(upgraded).close()  # a writable open migrates it
        rows = []
        for label, stride in (("all steps", 1), (f"every {STRIDE}th step", STRIDE)):
            for which, column in (("grad", "param_grad"), ("data", "param_data")):
                what = f"{'gradients' if which == 'grad' else 'values'}(), {label}"
                rows.append((what, "0008: steps row", *old_read(old, column, stride)))
                rows.append((what, "0009: recorded", *new_read(db, which, stride)))
                rows.append((what, "0009: upgraded", *new_read(upgraded, which, stride)))
    print(f"parameter arrays: {db.name}, bytes read (rchar) against bytes returned")
    print("| read | layout | read | returned | read / returned | time |")
    print("|---|---|---:|---:|---:|---:|")
    for what, layout, read, returned, ms in rows:
        print(
            f"| {what} | {layout} | {read / 1e6:.1f} MB | {returned / 1e6:.1f} MB "
            f"| {read / returned:.2f}x | {ms:.0f} ms |"
        )


if __name__ == "__main__":
    main()
