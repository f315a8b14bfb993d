"""Time of ``first_nonfinite()`` (where the first NaN/inf came from) on 10,000-step runs.

    python benchmarks/forensics.py                 # makes the runs first (~2 min, ~500 MB)
    python benchmarks/forensics.py --db big.db     # reuse a database made by an earlier call

Three runs of benchmarks/bigrun.py (337 parameters, a 65,818-node trace every 100th
step): one that stays finite (the writer's summary says so: one key lookup), one
whose update at step 9,950 sets a weight to inf (the summary's step, the parameter
arrays from the row before it, the update rows), and one whose traced step 5,000
overflows in the value pass (two indexed queries from that step, the arrays up to
it, one step's nodes). The peer is ``metrics()``
of the same run: every step's loss, acc and lr, the read a user makes first.
Target: well under a second (< 500 ms, median).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bigrun import make_big_run, timed
from gradtrace.engine import Value

from gradtrace import tracer

TARGET_MS = 500.0
RUNS = {"big": None, "big-update": 9_950}


def make_runs(db: str) -> None:
    for name, poison in RUNS.items():
        make_big_run(db, name=name, poison_at=poison)
    # A forward origin at a traced step: the same run, one input fed inf at step 5,000.
    make_forward_run(db)


def make_forward_run(db: str, steps: int = 10_000, at: int = 5_000) -> None:
    import warnings

    from gradtrace.engine import MLP, make_moons
    from gradtrace.tracer.recording.demo import moons_loss

    X, y = make_moons(100, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], seed=1337)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with tracer.record("big-forward", db=db, background=True) as run:
            run.watch(model)
            loss_value = 1.0
            for k in range(steps):
                if k % 100 == 0:
                    model.zero_grad()
                    loss, _ = moons_loss(model, X, y)
                    if k == at:
                        loss = loss * (Value(1e300) * Value(1e300))  # overflows to inf
                    loss.backward()
                    loss_value = loss.data if k < at else 0.5
                    run.log(loss, lr=0.1)
                else:
                    run.log(loss_value, lr=0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a database made by an earlier run of this script")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "forensics.db")
        if not args.db or not Path(args.db).exists():
            make_runs(db)
        store = tracer.connect(db, readonly=True)
        rows = []
        for name in [*RUNS, "big-forward"]:
            run = store.run(name)
            _, peer, _ = timed(run.metrics)
            # A fresh RunView each call: the graph shape is read again every time.
            cold, warm, origin = timed(lambda n=name: store.run(n).first_nonfinite())
            where = "none" if origin is None else f"step {origin.step}, {origin.kind}"
            rows.append((name, run.info["steps"], where, cold, warm, peer, warm / peer))
        _, runs_ms, df = timed(store.runs)
        store.close()
    print(
        "| run | steps | origin found | first call | median | metrics() median | ratio | target |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for name, steps, where, cold, warm, peer, ratio in rows:
        verdict = "PASS" if warm < TARGET_MS else "MISS"
        print(
            f"| {name} | {steps:,} | {where} | {cold:.0f} ms | {warm:.0f} ms | {peer:.0f} ms "
            f"| {ratio:.1f}x | < {TARGET_MS:.0f} ms: {verdict} |"
        )
    print(f"\nstore.runs() (diverged_at_step from the summary), {len(df)} runs: {runs_ms:.0f} ms")


if __name__ == "__main__":
    main()
