"""How each cost grows with the work: engine step, run.log(), reads, the run list,
the runs page refresh and opening a database, size by size, with the fitted
growth exponent k (time ∝ size^k, least squares on log-log) of each series.

    flock /tmp/gradtrace-bench.lock python benchmarks/scaling.py           # ~5 minutes
    flock /tmp/gradtrace-bench.lock python benchmarks/scaling.py --quick   # smaller sizes

Everything runs in one process that has imported numpy, pandas, SQLAlchemy and
dash, as the recorder and dashboard do. Big inputs are built quickly: long runs
and many runs by bulk SQL inserts of what the writer would write, big files by
inserting blobs; only the graphs are built by the engine itself.

Targets (issue 14): every exponent <= 1.05 (open time ~ 0); the moons step with
the collector on (``linear_gc``, what ``record()`` uses) within 1.1x of the same
step with the collector off; a 100k-step run's ``metrics()`` <= 350 ms; the runs
page refresh with nothing new <= 5 ms whatever the database holds.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dash  # noqa: F401  (a realistic heap: what the dashboard process holds)
import numpy as np
import pandas as pd  # noqa: F401
from gradtrace.engine import MLP, Value, hinge, l2, linear_gc, make_moons
from gradtrace.tracer.storage.db import open_database

from gradtrace import tracer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from growth import exponent  # benchmarks/growth.py

from dashboard import Caller  # benchmarks/dashboard.py


def best(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls (after one warm-up when repeat > 1)."""
    if repeat > 1:
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- engine step and log() ---------------------------------------------------------


def moons_step(model: MLP, X: list, y: list, run=None) -> int:
    scores = [model([Value(a), Value(b)]) for a, b in X]
    loss = hinge(scores, y) + l2(model.parameters())
    model.zero_grad()
    loss.backward()
    if run is not None:
        run.log(loss)
    for p in model.parameters():
        p.data -= 0.01 * p.grad
    return len(model.parameters())


def engine_rows(points: list[int], tmp: Path) -> list[tuple]:
    """(points, nodes, s/step policy, s/step plain gc, s/step gc off, s log())."""
    rows = []
    for n in points:
        X, y = make_moons(n, 0.1, seed=1)
        model = MLP(2, [16, 16, 1], seed=1)
        repeat = 5 if n <= 100 else (3 if n <= 1000 else 2)
        rounds = 3 if n <= 100 else 2
        found: dict[str, list[float]] = {"policy": [], "plain": [], "off": []}
        for _ in range(rounds):  # alternating blocks; the best block of each (shared machine)
            gc.collect()
            found["plain"].append(best(lambda m=model, X=X, y=y: moons_step(m, X, y), repeat))
            with linear_gc():
                found["policy"].append(best(lambda m=model, X=X, y=y: moons_step(m, X, y), repeat))
            gc.disable()
            try:
                found["off"].append(best(lambda m=model, X=X, y=y: moons_step(m, X, y), repeat))
            finally:
                gc.enable()
        policy, plain, off = (min(found[k]) for k in ("policy", "plain", "off"))
        db = tmp / f"log{n}.db"
        logs = []
        with tracer.record(f"log{n}", db=db) as run:
            run.watch(model)
            for _ in range(min(repeat, 3) + 1):
                scores = [model([Value(a), Value(b)]) for a, b in X]
                loss = hinge(scores, y) + l2(model.parameters())
                model.zero_grad()
                loss.backward()
                t = time.perf_counter()
                run.log(loss)
                logs.append(time.perf_counter() - t)
                nodes = len(loss.topo())
                del scores, loss
        db.unlink()
        rows.append((n, nodes, policy, plain, off, statistics.median(logs[1:]), logs[0]))
        print(f"  engine {nodes:>9,} nodes: {policy:.4f} s linear_gc", flush=True)
    return rows


# -- long runs ---------------------------------------------------------------------


def long_run(db: Path, steps: int, n_params: int = 17) -> None:
    """A run of ``steps`` steps as the writer would store it, built by bulk SQL."""
    params = [Value(0.1 * i) for i in range(n_params)]
    with tracer.record("long", db=db) as run:
        run.watch(params)
    rng = np.random.default_rng(0)
    with sqlite3.connect(db) as conn:
        key = conn.execute("SELECT run_key FROM runs WHERE name = 'long'").fetchone()[0]
        data = rng.standard_normal((steps, n_params))
        grad = rng.standard_normal((steps, n_params))
        conn.executemany(
            "INSERT INTO steps VALUES (?, ?, ?, NULL, NULL)",
            ((key, k, 1.7e9 + k) for k in range(steps)),
        )
        for table, arrays in (("param_values", data), ("param_grads", grad)):
            conn.executemany(
                f"INSERT INTO {table} VALUES (?, ?, 0, ?)",
                ((key, k, arrays[k].tobytes()) for k in range(steps)),
            )
        loss = rng.random(steps)
        conn.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, ?, NULL)",
            (
                (key, name, k, float(v[k]))
                for k in range(steps)
                for name, v in (("acc", 1 - loss), ("loss", loss), ("lr", loss * 0.1))
            ),
        )
        conn.executemany(
            "INSERT INTO updates VALUES (?, ?, ?, ?, ?, ?, 0.1, NULL)",
            (
                (key, p, k, float(data[k, p]), float(grad[k, p]), float(data[k, p]) - 0.1)
                for p in range(n_params)
                for k in range(steps)
            ),
        )
        conn.executemany(
            "INSERT INTO run_metrics VALUES (?, ?, ?, ?, NULL, ?, ?)",
            [
                (key, name, steps - 1, float(v[-1]), float(v.min()), float(v.max()))
                for name, v in (("acc", 1 - loss), ("loss", loss), ("lr", loss * 0.1))
            ],
        )
        conn.execute("UPDATE runs SET steps = ? WHERE run_key = ?", (steps, key))
    conn.close()


def read_rows(sizes: list[int], tmp: Path) -> list[tuple]:
    rows = []
    for steps in sizes:
        db = tmp / f"long{steps}.db"
        long_run(db, steps)
        with tracer.connect(db, readonly=True) as store:
            view = store.run("long")
            repeat = 5 if steps <= 10_000 else 3
            rows.append(
                (
                    steps,
                    best(view.metrics, repeat),
                    best(lambda v=view: v.updates(params=[3]), repeat),
                    best(view.gradients, repeat),
                )
            )
        print(f"  reads {steps:>7,} steps: metrics {rows[-1][1] * 1000:.0f} ms", flush=True)
    return rows


# -- many runs: runs() and the runs page -----------------------------------------------


def many_runs(db: Path, n: int) -> None:
    """``n`` short runs: one recorded, the rest copied row by row in SQL."""
    with tracer.record("r0", db=db, config={"lr": 0.1, "depth": 2}) as run:
        run.log(1.0, acc=0.5)
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(runs)") if r[1] != "run_key"]
        names = ", ".join(cols)
        pick = ", ".join(
            "lower(hex(randomblob(16)))" if c == "id" else ("?" if c == "name" else c) for c in cols
        )
        for i in range(1, n):
            cur = conn.execute(
                f"INSERT INTO runs ({names}) SELECT {pick} FROM runs WHERE run_key = 1",
                (f"r{i}",),
            )
            conn.execute(
                "INSERT INTO run_metrics SELECT ?, name, last_step, last_value, last_raw,"
                " min_value, max_value FROM run_metrics WHERE run_key = 1",
                (cur.lastrowid,),
            )
    conn.close()


def refresh_ms(db: Path) -> tuple[float, float]:
    """(first refresh, refresh with nothing new) of the runs page, through Flask."""
    from gradtrace.dashboard import create_app

    caller = Caller(create_app(str(db)))
    first, body = caller.call("runs-grid.rowData", {}, "runs-timer.n_intervals")
    signature = body["response"]["runs-signature"]["data"]
    state = {"runs-signature.data": signature}
    again = [caller.call("runs-grid.rowData", state, "runs-timer.n_intervals")[0] for _ in range(7)]
    return first / 1000, statistics.median(again) / 1000


def runs_rows(counts: list[int], tmp: Path, long_db: Path | None) -> list[tuple]:
    rows = []
    for n in counts:
        db = tmp / f"runs{n}.db"
        many_runs(db, n)
        with tracer.connect(db, readonly=True) as store:
            t = best(store.runs, 5)
        rows.append((f"{n} runs", n, t, *refresh_ms(db)))
    if long_db is not None:
        with tracer.connect(long_db, readonly=True) as store:
            t = best(store.runs, 5)
        rows.append(("1 run x 100k steps", 1, t, *refresh_ms(long_db)))
    return rows


# -- opening ---------------------------------------------------------------------------


def big_file(db: Path, megabytes: int) -> None:
    """A gradtrace database of about ``megabytes`` MB: a run whose steps carry 1 MB blobs."""
    with tracer.record("big", db=db) as run:
        run.log(1.0)
    blob = os.urandom(1 << 20)
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO steps VALUES (1, ?, 0, NULL, NULL)",
            ((k,) for k in range(1, megabytes + 1)),
        )
        conn.executemany(
            "INSERT INTO param_values VALUES (1, ?, 0, ?)",
            ((k, blob) for k in range(1, megabytes + 1)),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def open_rows(sizes_mb: list[int], tmp: Path) -> list[tuple]:
    rows = []
    for mb in sizes_mb:
        db = tmp / f"open{mb}.db"
        big_file(db, mb)
        size = db.stat().st_size

        def ro(db=db) -> None:
            open_database(db, readonly=True).dispose()

        def rw(db=db) -> None:
            open_database(db).dispose()

        rows.append((mb, size, best(ro, 7), best(rw, 7)))
        db.unlink()
    return rows


# -- report ----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    args = ap.parse_args()
    points = [2, 15, 100, 1000, 3000] if not args.quick else [2, 15, 100]
    steps = [1_000, 10_000, 100_000] if not args.quick else [1_000, 10_000]
    counts = [1, 100, 1000] if not args.quick else [1, 100]
    mbs = [1, 100, 1000] if not args.quick else [1, 20]
    misses: list[str] = []

    def target(what: str, ok: bool, text: str) -> str:
        if not ok:
            misses.append(what)
        return f"{what}: {text} {'PASS' if ok else 'MISS'}"

    with tempfile.TemporaryDirectory(prefix="gt-scaling-") as tmpdir:
        tmp = Path(tmpdir)
        print(f"scaling benchmark: python {sys.version.split()[0]}, {os.cpu_count()} cores")
        eng = engine_rows(points, tmp)
        reads = read_rows(steps, tmp)
        runs = runs_rows(counts, tmp, tmp / "long100000.db" if 100_000 in steps else None)
        opens = open_rows(mbs, tmp)

    out = []
    out.append("\n### Engine step and run.log() by graph size\n")
    out.append("| nodes | step, linear_gc | step, plain gc | step, gc off | log() | first log() |")
    out.append("|---:|---:|---:|---:|---:|---:|")
    for _n, nodes, pol, plain, off, log, first in eng:
        out.append(
            f"| {nodes:,} | {pol * 1e3:.1f} ms ({pol / nodes * 1e6:.2f} µs/node) | "
            f"{plain * 1e3:.1f} ms | {off * 1e3:.1f} ms | {log * 1e3:.1f} ms "
            f"({log / nodes * 1e6:.2f} µs/node) | {first * 1e3:.1f} ms |"
        )
    sizes = [r[1] for r in eng]
    big = [r for r in eng if r[1] >= 60_000] or eng
    k = {
        "step, linear_gc (all sizes)": exponent(sizes, [r[2] for r in eng]),
        "step, linear_gc (>= 65k nodes)": exponent([r[1] for r in big], [r[2] for r in big]),
        "step, plain gc (>= 65k nodes)": exponent([r[1] for r in big], [r[3] for r in big]),
        "step, gc off (>= 65k nodes)": exponent([r[1] for r in big], [r[4] for r in big]),
        "log() (>= 65k nodes)": exponent([r[1] for r in big], [r[5] for r in big]),
    }
    moons = next((r for r in eng if r[0] == 100), eng[-1])
    out.append("\n### Reads of one run by length\n")
    out.append("| steps | metrics() | updates(params=[one]) | gradients() |")
    out.append("|---:|---:|---:|---:|")
    for s, m, u, g in reads:
        out.append(f"| {s:,} | {m * 1e3:.1f} ms | {u * 1e3:.1f} ms | {g * 1e3:.1f} ms |")
    rs = [r[0] for r in reads]
    k["metrics()"] = exponent(rs, [r[1] for r in reads])
    k["updates(params=[one])"] = exponent(rs, [r[2] for r in reads])
    k["gradients()"] = exponent(rs, [r[3] for r in reads])
    out.append("\n### The run list and the runs page\n")
    out.append("| database | store.runs() | page refresh, first | page refresh, nothing new |")
    out.append("|---|---:|---:|---:|")
    for what, _, t, first, again in runs:
        out.append(f"| {what} | {t * 1e3:.1f} ms | {first * 1e3:.1f} ms | {again * 1e3:.2f} ms |")
    many = [r for r in runs if r[0].endswith("runs")]
    k["store.runs() by runs"] = exponent([r[1] for r in many], [r[2] for r in many])
    k["page refresh, first, by runs"] = exponent([r[1] for r in many], [r[3] for r in many])
    k["page refresh, nothing new"] = exponent([r[1] for r in many], [r[4] for r in many])
    out.append("\n### Opening a database by file size\n")
    out.append("| file | read-only open | writable open |")
    out.append("|---:|---:|---:|")
    for _mb, size, ro, rw in opens:
        out.append(f"| {size / 1e6:,.0f} MB | {ro * 1e3:.2f} ms | {rw * 1e3:.2f} ms |")
    k["open, read-only (~0)"] = exponent([r[1] for r in opens], [r[2] for r in opens])
    k["open, writable (~0)"] = exponent([r[1] for r in opens], [r[3] for r in opens])
    out.append("\n### Fitted growth exponents (time ∝ size^k)\n")
    out.append("| series | k |")
    out.append("|---|---:|")
    for name, v in k.items():
        out.append(f"| {name} | {v:.2f} |")
    out.append("\n```")
    worst = max(v for n, v in k.items() if "plain gc" not in n and "gc off" not in n)
    out.append(target("every exponent <= 1.05", worst <= 1.05, f"worst {worst:.2f}"))
    ratio = moons[2] / moons[4]
    out.append(target("moons step, linear_gc vs gc off <= 1.1x", ratio <= 1.1, f"{ratio:.2f}x"))
    m100k = next((r[1] for r in reads if r[0] == 100_000), math.nan)
    out.append(target("100k-step metrics() <= 350 ms", m100k <= 0.35, f"{m100k * 1e3:.0f} ms"))
    worst_refresh = max(r[4] for r in runs)
    out.append(
        target(
            "runs page refresh, nothing new <= 5 ms",
            worst_refresh <= 0.005,
            f"worst {worst_refresh * 1e3:.2f} ms",
        )
    )
    out.append("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
