"""engine/value.py at a git revision against the working tree's, in one process.

    python benchmarks/value_ab.py c9730a1            # 40 steps each, alternating
    python benchmarks/value_ab.py main --steps 80

A change to the node class (a slot more, ``__dict__``) moves a step by a few
percent, less than a shared machine's noise between two runs of
``benchmarks/engine.py``. Here both versions of ``value.py`` are loaded side by
side (everything else shared), build micrograd's moons step (MLP 2-16-16-1,
hinge loss, L2, backward, SGD) from the same weights, and alternate step by
step, each timed from a collected heap including the collection after it. The
losses must agree bit for bit. Prints the median and the fastest step of each,
and their ratios, plus the bytes a node takes (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
import types
from pathlib import Path

from gradtrace.engine import make_moons

ROOT = Path(__file__).resolve().parent.parent


def load(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"{name}/value.py", "exec"), module.__dict__)
    return module


def build(V, seed: int = 1):
    rng = random.Random(seed)
    layers, params = [], []
    for nin, nout in ((2, 16), (16, 16), (16, 1)):
        layer = []
        for _ in range(nout):
            w, b = [V(rng.uniform(-1, 1)) for _ in range(nin)], V(0.0)
            params += [*w, b]
            layer.append((w, b))
        layers.append(layer)
    return params, layers


def step(V, params, layers, X, Y) -> float:
    terms = []
    for x, y in zip(X, Y):
        h = [V(xi) for xi in x]
        for depth, layer in enumerate(layers):
            outs = [sum((wi * hi for wi, hi in zip(w, h)), b) for w, b in layer]
            h = [o.relu() for o in outs] if depth < len(layers) - 1 else outs
        terms.append((1 + h[0] * -y).relu())
    loss = sum(terms) * (1.0 / len(terms)) + 1e-4 * sum(p * p for p in params)
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= 0.1 * p.grad
    return loss.data


def node_bytes(V) -> float:
    tracemalloc.start()
    nodes = [V(1.0) for _ in range(50_000)]
    size = tracemalloc.get_traced_memory()[0] / len(nodes)
    tracemalloc.stop()
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="git revision of the baseline, e.g. main or c9730a1")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    show = ["git", "-C", str(ROOT), "show", f"{args.rev}:engine/value.py"]
    base = subprocess.run(show, capture_output=True, text=True, check=True).stdout
    engines = {
        args.rev: load("value_base", base),
        "worktree": load("value_new", (ROOT / "engine/value.py").read_text()),
    }
    X, Y = make_moons(100, noise=0.1, seed=1)
    models = {k: build(m.Value) for k, m in engines.items()}
    times: dict[str, list[float]] = {k: [] for k in engines}
    for k in range(args.steps):
        order = list(engines) if k % 2 == 0 else list(reversed(engines))
        losses = {}
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            losses[name] = step(engines[name].Value, *models[name], X, Y)
            gc.collect()
            times[name].append(time.perf_counter() - t0)
        if len(set(losses.values())) != 1:
            sys.exit(f"step {k}: the two engines' losses differ: {losses}")
    (a, ta), (_, tb) = times.items()
    python = sys.version.split()[0]
    print(f"value.py A/B: moons step, {args.steps} alternating steps, python {python}")
    print("| value.py | median s/step | fastest s/step | bytes/node |")
    print("|---|---:|---:|---:|")
    for name, t in times.items():
        row = f"{statistics.median(t):.4f} | {min(t):.4f} | {node_bytes(engines[name].Value):.0f}"
        print(f"| {name} | {row} |")
    ratio = statistics.median(tb) / statistics.median(ta)
    print(f"worktree / {a}: median {ratio:.3f}, fastest {min(tb) / min(ta):.3f}")


if __name__ == "__main__":
    main()
