"""Speed of gradtrace's engine against micrograd on micrograd's own moons demo step.

Run from the repository root (needs ``pip install micrograd==0.1.0``, the ``bench`` extra)::

    python benchmarks/engine.py                 # 20 steps, seed 1
    python benchmarks/engine.py --steps 50 --seed 3
    python benchmarks/engine.py --with-deps     # in a process that imported pandas & co.
    python benchmarks/engine.py --jit           # engine.jit; each engine in a process of its own
    python benchmarks/engine.py --jit-sizes     # jit and eager from 25 to 400 points

One step is the whole of micrograd's demo loop body: MLP 2-16-16-1 (relu), 100
points of ``engine.make_moons(100, 0.1, seed)``, SVM hinge loss
``(1 + -yi*scorei).relu()`` averaged plus ``1e-4 * sum(p*p)``, ``zero_grad``,
``backward`` and ``p.data -= lr * p.grad`` with ``lr = 1.0 - 0.9*k/steps``.

Three variants train side by side in one process, from the same initial weights
(gradtrace's seeded weights copied into micrograd's model in ``parameters()``
order), alternating step by step with a rotating order:

* gradtrace, garbage collector on;
* micrograd as shipped, garbage collector on;
* micrograd with ``gc.disable()`` for the duration of the step.

Every timed step starts from a clean heap (``gc.collect()`` outside the timer),
so no variant pays for another one's garbage. The timer covers building the
graph, backward, the update and dropping the graph. With the collector on, it
also covers one ``gc.collect()`` after the step: micrograd's graph is a web of
reference cycles (every ``_backward`` closure holds its own output) that only
the collector frees, so that collection is part of what a step costs; for
gradtrace, whose graph is freed by reference counting, it finds nothing and
costs a few milliseconds. (A plain loop that leaves collection to the automatic
collector costs micrograd about as much; see benchmarks/README.md.) With
``gc.disable()`` the collection runs outside the timer, which favours
micrograd. The losses of the two engines must agree to 1e-9 at every step, or
the script stops with an error.

The collector's cost grows with everything else alive in the process: a step
allocates some 66,000 tracked nodes, enough to set off full collections, and each
full collection walks the whole heap. A bare interpreter is the best case;
``--with-deps`` first imports gradtrace's own runtime dependencies (numpy,
pandas, SQLAlchemy, plotly, dash), as the recorder and dashboard do, to measure a
process like the one gradtrace really runs in.

Peak memory is ``tracemalloc``'s peak over one extra, untimed step per variant
(tracemalloc slows Python down too much to time under it).

``--jit`` times four engines instead, each in a fresh process of its own (so
none inherits another's heap): gradtrace eager, gradtrace ``jit`` (the loss
function captured once with the 100 points as its argument, then replayed:
the timer covers the call, ``zero_grad``, ``backward`` and the update),
micrograd with its collector off for the step (collected outside the timer),
and micrograd as shipped. gradtrace's two run with the collector on and no
forced collection: their graphs hold no cycles. jit's losses must equal the
eager ones bit for bit, micrograd's to 1e-9. The capture (first call) and one
checked call (the eager re-run ``check_every`` makes) are timed on their own.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gradtrace.engine.jit import CHECK_EVERY
from growth import exponent  # benchmarks/growth.py

from gradtrace import engine

try:
    from micrograd.engine import Value as MicroValue
    from micrograd.nn import MLP as MicroMLP
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("micrograd is not installed: pip install micrograd==0.1.0 (or .[bench])")

TOLERANCE = 1e-9
TARGET_VS_SHIPPED = 15.0
TARGET_VS_NO_GC = 1.5
TARGET_JIT_VS_NO_GC = 8.0
TARGET_JIT_VS_EAGER = 4.0
JIT_VARIANTS = ("gradtrace jit", "gradtrace eager", "micrograd (gc.disable)", "micrograd (shipped)")
SIZES = [16, 16, 1]
DEPENDENCIES = ("numpy", "pandas", "sqlalchemy", "plotly", "dash")


@dataclass
class Variant:
    """One engine and model being trained, with the numbers measured on it."""

    name: str
    value: Callable[[float], Any]  # the engine's Value class
    model: Any
    parents: Callable[[Any], Iterable[Any]]
    gc_enabled: bool = True
    seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    nodes: int = 0
    peak_bytes: int = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="data and weight seed (default 1)")
    parser.add_argument(
        "--with-deps",
        action="store_true",
        help="import numpy, pandas, SQLAlchemy, plotly and dash first (a realistic heap)",
    )
    parser.add_argument(
        "--jit", action="store_true", help="gradtrace.engine.jit vs the others, fresh processes"
    )
    parser.add_argument(
        "--jit-sizes",
        action="store_true",
        help="jit and eager CPU time per step at 25-400 points, with fitted growth exponents",
    )
    parser.add_argument("--variant", choices=JIT_VARIANTS, help=argparse.SUPPRESS)  # a child
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)  # its first steps only
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def import_dependencies() -> list[str]:
    """Import gradtrace's runtime dependencies that are installed; return their names."""
    loaded = []
    for name in DEPENDENCIES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        loaded.append(name)
    return loaded


def make_variants(seed: int) -> list[Variant]:
    """gradtrace's seeded model and two micrograd models holding the same weights."""
    ours = engine.MLP(2, SIZES, activation="relu", seed=seed)
    variants = [Variant("gradtrace", engine.Value, ours, lambda v: v.parents)]
    for name, gc_enabled in (("micrograd (shipped)", True), ("micrograd (gc.disable)", False)):
        theirs = MicroMLP(2, SIZES)
        their_params = theirs.parameters()
        assert len(their_params) == len(ours.parameters()), "models differ in shape"
        for mine, their in zip(ours.parameters(), their_params):
            their.data = mine.data
        variants.append(Variant(name, MicroValue, theirs, lambda v: v._prev, gc_enabled))
    return variants


def build_loss(value: Callable[[float], Any], model: Any, X: list, y: list) -> Any:
    """micrograd's demo ``loss()``, verbatim apart from the Value class it is given."""
    inputs = [list(map(value, row)) for row in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def train_step(variant: Variant, X: list, y: list, k: int, steps: int) -> float:
    """One step of the demo; returns the loss, the graph is gone when it returns."""
    total = build_loss(variant.value, variant.model, X, y)
    variant.model.zero_grad()
    total.backward()
    lr = 1.0 - 0.9 * k / steps
    for p in variant.model.parameters():
        p.data -= lr * p.grad
    return total.data


def timed_step(variant: Variant, X: list, y: list, k: int, steps: int) -> None:
    gc.collect()  # a clean heap; not timed
    if not variant.gc_enabled:
        gc.disable()
    try:
        start = time.perf_counter()
        loss = train_step(variant, X, y, k, steps)
        if variant.gc_enabled:
            gc.collect()  # frees micrograd's cyclic graph; part of its step
        variant.seconds.append(time.perf_counter() - start)
    finally:
        gc.enable()
    variant.losses.append(loss)


def measure_peak(variant: Variant, X: list, y: list, k: int, steps: int) -> None:
    """tracemalloc's peak over one step, which also keeps the models in step."""
    gc.collect()
    if not variant.gc_enabled:
        gc.disable()
    tracemalloc.start()
    try:
        loss = train_step(variant, X, y, k, steps)
        variant.peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.enable()
    variant.losses.append(loss)


def count_nodes(root: Any, parents: Callable[[Any], Iterable[Any]]) -> int:
    """Distinct nodes reachable from ``root`` (iterative, independent of either engine)."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for p in parents(stack.pop()):
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return len(seen)


def check_losses(variants: list[Variant], k: int) -> None:
    reference = variants[0].losses[k]
    for v in variants[1:]:
        if not abs(v.losses[k] - reference) <= TOLERANCE:
            raise SystemExit(
                f"step {k}: loss mismatch, {variants[0].name} {reference!r} "
                f"vs {v.name} {v.losses[k]!r} (tolerance {TOLERANCE})"
            )


def run(steps: int, seed: int) -> list[Variant]:
    X, y = engine.make_moons(100, noise=0.1, seed=seed)
    variants = make_variants(seed)
    for v in variants:  # graph size, before any training; same program every step
        v.nodes = count_nodes(build_loss(v.value, v.model, X, y), v.parents)
        gc.collect()
    for k in range(steps):
        shift = k % len(variants)
        for v in variants[shift:] + variants[:shift]:
            timed_step(v, X, y, k, steps)
        check_losses(variants, k)
    for v in variants:
        measure_peak(v, X, y, steps, steps)
    check_losses(variants, steps)
    return variants


def format_table(variants: list[Variant]) -> str:
    ours, shipped, no_gc = variants
    base = statistics.median(ours.seconds)
    rows = [
        "| engine | s/step (median) | nodes/step | peak MiB/step (tracemalloc) "
        "| gradtrace speed-up |",
        "|---|---:|---:|---:|---:|",
    ]
    for v in variants:
        med = statistics.median(v.seconds)
        ratio = "1.0x" if v is ours else f"{med / base:.1f}x"
        rows.append(
            f"| {v.name} | {med:.4f} | {v.nodes:,} | {v.peak_bytes / 2**20:.1f} | {ratio} |"
        )
    rows.append("")
    for other, target in ((shipped, TARGET_VS_SHIPPED), (no_gc, TARGET_VS_NO_GC)):
        ratio = statistics.median(other.seconds) / base
        verdict = "PASS" if ratio >= target else "MISS"
        rows.append(f"target >= {target:g}x vs {other.name}: {ratio:.1f}x {verdict}")
    return "\n".join(rows)


def jit_child(name: str, steps: int, seed: int, limit: int | None) -> dict[str, Any]:
    """Train one engine alone in this process; what the parent prints."""
    X, y = engine.make_moons(100, noise=0.1, seed=seed)
    base = "gradtrace" if name.startswith("gradtrace") else name
    variant = next(v for v in make_variants(seed) if v.name == base)
    extra: dict[str, float] = {}
    step: Callable[[int], float]
    if name == "gradtrace jit":
        model = variant.model

        def loss_of(rows: list) -> Any:  # build_loss with the inputs made by jit
            return build_loss(lambda v: v, model, rows, y)

        import numpy  # noqa: F401 - imported by the first call: not the capture's cost

        fn = engine.jit(loss_of)
        t0 = time.perf_counter()
        fn(X)  # the capture
        extra["capture_s"] = time.perf_counter() - t0
        fn(X)  # the first replay is checked: an eager re-run, compared with the capture
        checked = engine.jit(loss_of, check_every=1)
        checked(X)
        t0 = time.perf_counter()
        checked(X)
        extra["check_s"] = time.perf_counter() - t0
        del checked

        def step(k: int) -> float:
            total = fn(X)
            model.zero_grad()
            total.backward()
            lr = 1.0 - 0.9 * k / steps
            for p in model.parameters():
                p.data -= lr * p.grad
            return total.data
    else:

        def step(k: int) -> float:
            return train_step(variant, X, y, k, steps)

    collect = variant.name == "micrograd (shipped)"  # its graph is freed by the collector only
    cpu_seconds: list[float] = []  # the process's CPU time: steadier on a shared machine
    for k in range(steps if limit is None else min(limit, steps)):
        gc.collect()  # a clean heap; not timed
        if not variant.gc_enabled:
            gc.disable()
        try:
            start, cpu = time.perf_counter(), time.process_time()
            variant.losses.append(step(k))
            if collect:
                gc.collect()
            variant.seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu)
        finally:
            gc.enable()
    return {"seconds": variant.seconds, "cpu": cpu_seconds, "losses": variant.losses, **extra}


def run_jit(steps: int, seed: int, with_deps: bool) -> dict[str, dict[str, Any]]:
    """Every engine of JIT_VARIANTS in a fresh process, one after the other."""
    import json
    import subprocess

    out = {}
    for name in JIT_VARIANTS:
        cmd = [sys.executable, __file__, "--variant", name, "--steps", str(steps)]
        if name == "micrograd (shipped)":  # ~1 s a step
            cmd += ["--limit", "5"]
        cmd += ["--seed", str(seed)] + (["--with-deps"] if with_deps else [])
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.splitlines()[-1])
    ours, eager = out["gradtrace jit"]["losses"], out["gradtrace eager"]["losses"]
    if ours != eager[: len(ours)]:
        raise SystemExit(f"jit losses differ from eager ones: {ours} vs {eager}")
    for name in JIT_VARIANTS[2:]:
        theirs = out[name]["losses"]
        if any(abs(a - b) > TOLERANCE for a, b in zip(ours, theirs)):
            raise SystemExit(f"{name} losses differ from gradtrace's by more than {TOLERANCE}")
    return out


def format_jit_table(out: dict[str, dict[str, Any]]) -> str:
    med = {name: statistics.median(r["seconds"]) for name, r in out.items()}
    cpu = {name: statistics.median(r["cpu"]) for name, r in out.items()}
    jit_s, jit_cpu = med["gradtrace jit"], cpu["gradtrace jit"]
    rows = [
        "| engine (own process) | s/step (median) | CPU s/step (median) | steps "
        "| jit speed-up | by CPU time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in out.items():
        rows.append(
            f"| {name} | {med[name]:.4f} | {cpu[name]:.4f} | {len(r['seconds'])} "
            f"| {med[name] / jit_s:.1f}x | {cpu[name] / jit_cpu:.1f}x |"
        )
    j = out["gradtrace jit"]
    amortized = jit_s + j["check_s"] / CHECK_EVERY
    rows += [
        "",
        f"jit capture (first call): {j['capture_s']:.3f} s; one checked call: "
        f"{j['check_s']:.3f} s; step with the default check amortized: {amortized:.4f} s",
    ]
    for other, target in (
        ("micrograd (gc.disable)", TARGET_JIT_VS_NO_GC),
        ("gradtrace eager", TARGET_JIT_VS_EAGER),
    ):
        ratio = med[other] / jit_s
        verdict = "PASS" if ratio >= target else "MISS"
        rows.append(
            f"target >= {target:g}x vs {other}: {ratio:.1f}x {verdict} "
            f"(by CPU time {cpu[other] / jit_cpu:.1f}x)"
        )
    return "\n".join(rows)


def jit_sizes(seed: int, steps: int, sizes: tuple[int, ...] = (25, 50, 100, 200, 400)) -> str:
    """CPU seconds per step of jit and eager at several data sizes, and the exponent b
    of a least-squares fit ``time ~ nodes**b`` (1.0: linear in the graph)."""
    rows = ["| points | nodes | eager CPU s/step | jit CPU s/step | jit speed-up |"]
    rows.append("|---:|---:|---:|---:|---:|")
    nodes, eager_s, jit_s = [], [], []
    for n in sizes:
        X, y = engine.make_moons(n, noise=0.1, seed=seed)
        model = engine.MLP(2, SIZES, seed=seed)

        def loss_of(rows: list, model: Any = model, y: list = y) -> Any:
            return build_loss(lambda v: v, model, rows, y)

        fn = engine.jit(loss_of)
        fn(X)
        fn(X)  # the capture and the checked first replay
        times = {"eager": [], "jit": []}
        for _ in range(steps):
            for name in times:
                gc.collect()
                t0 = time.process_time()
                root = (
                    fn(X) if name == "jit" else loss_of([[engine.Value(a) for a in r] for r in X])
                )
                model.zero_grad()
                root.backward()
                times[name].append(time.process_time() - t0)
                del root
        nodes.append(fn.captures[next(iter(fn.captures))].n_nodes)
        eager_s.append(statistics.median(times["eager"]))
        jit_s.append(statistics.median(times["jit"]))
        rows.append(
            f"| {n} | {nodes[-1]:,} | {eager_s[-1]:.4f} | {jit_s[-1]:.4f} "
            f"| {eager_s[-1] / jit_s[-1]:.1f}x |"
        )
    fit = {k: exponent(nodes, v) for k, v in (("eager", eager_s), ("jit", jit_s))}
    rows.append("")
    rows.append(f"fitted growth exponent in nodes: eager {fit['eager']:.2f}, jit {fit['jit']:.2f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.jit_sizes:
        print(f"forward + backward, CPU time, median of {args.steps} steps, MLP 2-16-16-1 relu")
        print(jit_sizes(args.seed, args.steps))
        return
    if args.variant:  # a child of --jit: one engine, one JSON line
        import json

        if args.with_deps:
            import_dependencies()
        gc.collect()
        print(json.dumps(jit_child(args.variant, args.steps, args.seed, args.limit)))
        return
    if args.jit:
        print(
            f"micrograd moons step, each engine in a fresh process: MLP 2-16-16-1 relu, "
            f"100 points, seed {args.seed}, {args.steps} steps; Python "
            f"{sys.version.split()[0]}{', dependencies imported first' if args.with_deps else ''}"
        )
        out = run_jit(args.steps, args.seed, args.with_deps)
        print("jit losses equal eager's bit for bit at every step, micrograd's to 1e-9")
        print(format_jit_table(out))
        return
    loaded = import_dependencies() if args.with_deps else []
    gc.collect()
    if args.with_deps:
        print(f"imported first: {', '.join(loaded) or 'none of them is installed'}")
    print(
        f"micrograd moons step: MLP 2-16-16-1 relu, 100 points, seed {args.seed}, "
        f"{args.steps} steps per variant; Python {sys.version.split()[0]}; "
        f"{len(gc.get_objects()):,} objects tracked by the collector before the run"
    )
    variants = run(args.steps, args.seed)
    print(f"losses agree to {TOLERANCE:g} at every step (final {variants[0].losses[-1]:.6f})")
    print(format_table(variants))


if __name__ == "__main__":
    main()
