"""Time of the health and onset analyses on runs of 1,000 and 10,000 steps.

    python benchmarks/health.py                   # makes the runs first (~1.5 min)
    python benchmarks/health.py --dir /tmp/hb      # reuse the databases of an earlier call

The runs are benchmarks/bigrun.py's (337 parameters, a 65,818-node trace every
100th step). ``neurons()`` reads at most 24 traced steps and bisects between them
for the step a neuron died; ``onset()`` reads every step's gradients and values;
``stalled()`` the last 50 steps'. The peer is ``metrics()`` of the same run (every
step's loss, acc and lr: the read a user makes first), timed in the same process.
Growth exponents are fitted between the two sizes (time ~ steps^k).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from bigrun import make_big_run, timed
from gradtrace.tracer.analysis import health
from gradtrace.tracer.analysis.onset import onset

from gradtrace import tracer

SIZES = (1_000, 10_000)


def measure(db: str) -> dict[str, float]:
    run = tracer.connect(db, readonly=True).run("big")
    out = {}
    for name, fn in {
        "metrics() (peer)": run.metrics,
        "health.neurons()": lambda: health.neurons(run),
        "onset()": lambda: onset(run),
        "health.stalled(last=50)": lambda: health.stalled(run),
    }.items():
        _, median, _ = timed(fn, repeat=3)
        out[name] = median
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="folder of the databases (made when missing)")
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="gt-health-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    for steps in SIZES:
        db = str(folder / f"big{steps}.db")
        if not Path(db).exists():
            make_big_run(db, steps=steps)
        rows[steps] = measure(db)
    head = "".join(f"{f'{s:,} steps ms':>18}{'x peer':>9}" for s in SIZES)
    print(f"{'what':<26}{head}   k")
    for name in rows[SIZES[0]]:
        line = f"{name:<26}"
        for s in SIZES:
            ms, peer = rows[s][name], rows[s]["metrics() (peer)"]
            line += f"{ms:>18.1f}{ms / peer:>9.1f}"
        a, b = rows[SIZES[0]][name], rows[SIZES[1]][name]
        k = math.log(b / a) / math.log(SIZES[1] / SIZES[0])
        print(f"{line}{k:>6.2f}")


if __name__ == "__main__":
    main()
