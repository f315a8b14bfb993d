"""First divergence between two 10,000-step runs: ``Store.diff`` against its reads.

    python benchmarks/diff.py                     # records three runs first (~4 min)
    python benchmarks/diff.py --db /tmp/diff.db   # reuse them (made on the first call)

Three moons-sized runs from ``bigrun.make_big_run``: ``big-a`` and ``big-b`` are the
same program (identical: the worst case, every step must be shown equal), and
``big-c`` traces every 101st step instead of every 100th, so its update at step 100
uses other gradients and it parts from ``big-a`` at step 101. Target: each answer
in under a second. The peer is one ``metrics()`` read of one run (the diff reads
both runs' metrics, so it is the floor); the second peer reads every parameter
array of both runs and compares them whole in numpy (what a diff without the
database's byte comparison and bisection would cost at least).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bigrun import make_big_run, timed

from gradtrace import tracer

TARGET_S = 1.0
RUNS = {"big-a": 100, "big-b": 100, "big-c": 101}  # name -> trace_every


def ensure_runs(db: str) -> None:
    have = set()
    if Path(db).exists():
        with tracer.connect(db, readonly=True) as store:
            have = set(store.runs()["name"])
    for name, every in RUNS.items():
        if name not in have:
            print(f"recording {name} (trace every {every}) ...", flush=True)
            make_big_run(db, trace_every=every, name=name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/gradtrace-diff-bench.db")
    args = ap.parse_args()
    ensure_runs(args.db)
    store = tracer.connect(args.db, readonly=True)
    a, b = store.run("big-a"), store.run("big-b")

    def whole_arrays() -> bool:
        return bool(np.array_equal(a.values().to_numpy(), b.values().to_numpy()))

    _, peer, _ = timed(lambda: a.metrics(), scale=1.0)
    _, arrays, _ = timed(whole_arrays, repeat=3, scale=1.0)
    rows = [
        ("peer: metrics() of one run", peer),
        ("peer: every parameter array, both runs", arrays),
    ]
    cold, same_s, same = timed(lambda: store.diff("big-a", "big-b"), scale=1.0)
    rows.append(
        (f"diff identical (through step {same.last_common_step}; cold {cold:.2f} s)", same_s)
    )
    cold, part_s, part = timed(lambda: store.diff("big-a", "big-c"), scale=1.0)
    where = f"params at {part.first_param_step}, update {part.update.step}"
    rows.append((f"diff diverged ({where}; cold {cold:.2f} s)", part_s))
    assert same.identical and part.first_param_step == 101, (same, part)
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'median s':>9}  {'x metrics()':>11}  {'< 1 s':>5}")
    for label, s in rows:
        ok = "yes" if s < TARGET_S else "NO"
        print(f"{label:<{width}}  {s:>9.3f}  {s / peer:>11.1f}  {ok:>5}")


if __name__ == "__main__":
    main()
