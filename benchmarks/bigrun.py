"""A 10,000-step, moons-sized recorded run for the read benchmarks.

    python benchmarks/bigrun.py /tmp/big.db          # ~1 minute, ~250 MB

Recording 10,000 real moons steps with every node traced would take ~20 minutes
and 10 GB, so the run is made through the ordinary recorder API like this: every
step logs the loss, accuracy and lr and captures all 337 parameter updates of an
MLP(2, [16, 16, 1]); every ``trace_every``-th step is a real forward and backward
pass of micrograd's moons demo (65,818 nodes) with every node traced; the steps in
between nudge the weights with their last real gradients. Reads then hit the same
tables, indexes and row sizes a fully recorded run has.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from gradtrace.engine import MLP, make_moons
from gradtrace.tracer import record
from gradtrace.tracer.recording.demo import moons_loss


def timed(
    fn: Callable[[], object], repeat: int = 5, scale: float = 1e3
) -> tuple[float, float, object]:
    """(first call, median of the rest, last result); times in ms (``scale=1`` for s).

    The benchmarks' one timer: the first call is reported apart, as the cold one.
    """
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * scale)
    return times[0], statistics.median(times[1:]), result


def make_big_run(
    db: str,
    steps: int = 10_000,
    trace_every: int = 100,
    name: str = "big",
    poison_at: int | None = None,
) -> str:
    """Record the run into ``db``; returns its id. ``poison_at=k`` makes step k's
    update set one weight to inf (a diverging run for benchmarks/forensics.py)."""
    X, y = make_moons(100, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], seed=1337)
    params = model.parameters()
    with record(
        name, db=db, config={"steps": steps, "trace_every": trace_every}, seed=1337, background=True
    ) as run:
        run.watch(model)
        loss_value, acc = 1.0, 0.5
        for k in range(steps):
            lr = 1.0 - 0.9 * k / steps
            if k % trace_every == 0:
                model.zero_grad()
                loss, acc = moons_loss(model, X, y)
                loss.backward()
                loss_value = loss.data
                run.log(loss, acc=acc, lr=lr)
            else:
                run.log(loss_value, acc=acc, lr=lr)
            for p in params:
                p.data -= 0.01 * lr * p.grad
            if k == poison_at:
                params[5].data = float("inf")
    return run.id


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "big.db"
    t0 = time.perf_counter()
    run_id = make_big_run(target)
    print(f"recorded run {run_id} into {target} in {time.perf_counter() - t0:.0f} s")
