"""Where a big graph's engine step goes: the step with the collector off against the
same step under ``linear_gc``, with the collector's own time per generation.

    flock /tmp/gradtrace-bench.lock python benchmarks/enginegc.py     # about 1 minute
    flock /tmp/gradtrace-bench.lock python benchmarks/enginegc.py --middle 10   # CPython's spacing

The moons MLP step (benchmarks/scaling.py's) at 100 to 3000 points (65k to 1.95M
nodes), in a process that has imported pandas and dash. Each size runs a block with
the collector off and a block under one ``linear_gc()`` (as ``record()`` holds it for
a run; the block's first step, which opens the gate to time a first full pass, is
dropped), twice, alternating; best step of each. ``gen0/1/2`` are the collections
per step under the policy and their time (``gc.callbacks``). The fitted exponent k
(time ∝ nodes^k) is printed for both series.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import dash  # noqa: F401  (the heap the recorder and dashboard processes hold)
import pandas as pd  # noqa: F401
from gradtrace.engine import MLP, Value, gcpolicy, hinge, l2, linear_gc, make_moons
from growth import exponent  # benchmarks/growth.py

POINTS = (100, 300, 1000, 3000)
_t: dict[int, list[float]] = {}
_start = [0.0]


def _timer(phase: str, info: dict) -> None:
    if phase == "start":
        _start[0] = time.perf_counter()
    else:
        _t.setdefault(info["generation"], []).append(time.perf_counter() - _start[0])


def step(model: MLP, X: list, y: list) -> int:
    scores = [model([Value(a), Value(b)]) for a, b in X]
    loss = hinge(scores, y) + l2(model.parameters())
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.01 * p.grad
    return len(loss.topo())


def block(model: MLP, X: list, y: list, steps: int) -> tuple[int, float, dict]:
    """(nodes, best step s, {generation: (collections, s) per step}) of one block."""
    times, nodes = [], 0
    for _ in range(steps):
        _t.clear()
        t0 = time.perf_counter()
        nodes = step(model, X, y)
        times.append((time.perf_counter() - t0, {g: (len(v), sum(v)) for g, v in _t.items()}))
    best = min(times[1:] if len(times) > 1 else times, key=lambda x: x[0])
    return nodes, best[0], best[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--middle", type=int, help="gcpolicy.MIDDLE for this run (default: as shipped)")
    args = ap.parse_args()
    if args.middle is not None:
        gcpolicy.MIDDLE = args.middle
    print(f"engine step by graph size, MIDDLE={gcpolicy.MIDDLE}, load {os.getloadavg()[0]:.2f}")
    print("| nodes | gc off | linear_gc | ratio | gen0 | gen1 | gen2 |")
    print("|---:|---:|---:|---:|---|---|---|")
    gc.callbacks.append(_timer)
    sizes, offs, pols = [], [], []
    for points in POINTS:
        X, y = make_moons(points, 0.1, seed=1)
        model = MLP(2, [16, 16, 1], seed=1)
        steps = 4 if points <= 1000 else 3
        off = pol = float("inf")
        gens: dict = {}
        for _ in range(2):
            gc.collect()
            gc.disable()
            try:
                nodes, t, _ = block(model, X, y, steps)
            finally:
                gc.enable()
            off = min(off, t)
            with linear_gc():
                nodes, t, g = block(model, X, y, steps)
            if t < pol:
                pol, gens = t, g
        sizes.append(nodes)
        offs.append(off)
        pols.append(pol)
        cells = [
            f"{gens[k][0]} in {gens[k][1] * 1e3:.0f} ms" if k in gens else "-" for k in (0, 1, 2)
        ]
        print(
            f"| {nodes:,} | {off * 1e3:.0f} ms ({off / nodes * 1e9:.0f} ns/node) "
            f"| {pol * 1e3:.0f} ms ({pol / nodes * 1e9:.0f} ns/node) | {pol / off:.2f}x | "
            + " | ".join(cells)
            + " |",
            flush=True,
        )
    gc.callbacks.remove(_timer)
    for name, ts in (("gc off", offs), ("linear_gc", pols)):
        k, k2 = exponent(sizes, ts), exponent(sizes[1:], ts[1:])
        print(f"k, {name}: {k:.2f} from {sizes[0]:,} nodes, {k2:.2f} from {sizes[1]:,}")


if __name__ == "__main__":
    main()
