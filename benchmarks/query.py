"""Read latency of the pandas query API on a 10,000-step moons-sized run.

    python benchmarks/query.py                 # makes the run first (~1.5 min)
    python benchmarks/query.py --db big.db     # reuse a run made by bigrun.py

Targets: one weight's history over all 10,000 steps, and one step's 65,818
nodes, each in < 50 ms, the first (cold) call as well as the median of repeated
calls; the cold call of ``nodes`` also loads the graph shape, and every call
decompresses the step's values and gradients.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sqlalchemy as sa
from bigrun import make_big_run, timed
from gradtrace.tracer.storage.codec import decode_floats
from gradtrace.tracer.storage.models import Trace

from gradtrace import tracer

TARGET_MS = 50.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a database made by benchmarks/bigrun.py")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "big.db")
        if not args.db:
            make_big_run(db)
        store = tracer.connect(db, readonly=True)
        run = store.run("big")
        steps = run.info["steps"]
        traced = run.traced_steps()
        mid = traced[len(traced) // 2]
        weight = "layers.1.neurons.7.w.3"
        rows = []
        cold, warm, df = timed(lambda: run.updates(params=[weight]), repeat=7)
        rows.append((f"one weight's history ({len(df):,} steps)", cold, warm, True))
        cold, warm, df = timed(lambda: run.nodes(mid), repeat=7)
        rows.append((f"one step's nodes ({len(df):,} nodes)", cold, warm, True))
        blobs = store.fetch(
            sa.select(Trace.data, Trace.grad, Trace.codec).where(
                Trace.run_key == run.key, Trace.step == mid
            )
        )[1][0]
        n = run.nodes_per_step()
        cold, warm, _ = timed(lambda: [decode_floats(b, blobs[2], n) for b in blobs[:2]], repeat=7)
        rows.append((f"  of which decoding values and grads (codec {blobs[2]})", cold, warm, False))
        cold, warm, df = timed(lambda: run.metrics(), repeat=7)
        rows.append((f"metrics, all steps ({len(df):,} rows)", cold, warm, False))
        cold, warm, df = timed(lambda: run.metrics(since=steps - 5), repeat=7)
        rows.append(("metrics since the last 5 steps (live view)", cold, warm, False))
        sample = list(range(0, steps, max(1, steps // 300)))
        cold, warm, df = timed(lambda: run.gradients(steps=sample), repeat=7)
        rows.append((f"all gradients at {len(sample)} sampled steps", cold, warm, False))
        cold, warm, df = timed(lambda: run.values(steps=mid), repeat=7)
        rows.append(("all parameter values at one step", cold, warm, False))
        cold, warm, df = timed(lambda: store.runs(), repeat=7)
        rows.append(("store.runs()", cold, warm, False))
        cold, warm, df = timed(lambda: run.first_nonfinite(), repeat=3)
        rows.append(("first_nonfinite()", cold, warm, False))
        store.close()
    print(
        f"query benchmark: {steps:,} steps, {len(run.parameters())} parameters, "
        f"{len(traced)} node-traced steps of {run.nodes_per_step():,} nodes"
    )
    print("| read | first call | median | target |")
    print("|---|---|---|---|")
    for name, cold, warm, has_target in rows:
        target = ""
        if has_target:
            ok = max(cold, warm) < TARGET_MS
            target = f"< {TARGET_MS:.0f} ms, cold and median: {'PASS' if ok else 'MISS'}"
        print(f"| {name} | {cold:.1f} ms | {warm:.1f} ms | {target} |")


if __name__ == "__main__":
    main()
