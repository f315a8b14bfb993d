"""Does a recording re-compute bit for bit? Rebuild every traced step and check.

    >>> result = store.run("moons").verify()           # doctest: +SKIP
    >>> result.ok, result.steps, result.nodes          # doctest: +SKIP
    (True, 100, 6581800)

For every node-traced step the recorded graph is rebuilt from its stored shape
(op codes, operands, the exponent of each ``**``) with ``engine.apply``, its leaves
fed the recorded leaf values; the engine then computes every inner value forward
and every gradient with ``backward()``, exactly as training did. Each value and
gradient is compared with the recorded one bit for bit (a NaN matches only a NaN
of the same bits). A rebuilt graph numbers its nodes in the recorded order because
the topological order depends only on the structure.

A run recorded from another micrograd-style engine is checked node by node
instead (:func:`verify_foreign`). Parameter updates are re-computed where the run
recorded its optimizer (SGD with momentum and weight decay, Adam, AdamW: the
engine's own expressions, per step, the moments carried from step to step). Other
optimizers and hand-written updates are reported as not checked. The first
mismatch is reported: step, node (or parameter), op, expected (recorded) and got
(re-computed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from gradtrace.engine import OPS, Value, apply

if TYPE_CHECKING:
    from gradtrace.tracer.read.runview import RunView

UPDATE_CHUNK = 2000  # steps of updates read at a time


@dataclass(frozen=True)
class Mismatch:
    """The first number that did not re-compute: where, what, recorded and re-computed."""

    step: int
    node: int | None  # None for a parameter update
    op: str
    label: str  # node label; for an update, the parameter's name
    what: str  # "value", "gradient" or "update"
    expected: float  # as recorded
    got: float  # as re-computed


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_run` checked, and the first mismatch (None: all exact)."""

    steps: int  # traced steps re-computed (up to the mismatch)
    nodes: int  # nodes whose value and gradient were compared
    updates: int  # parameter updates re-computed
    optimizer: str | None
    skipped_updates: str | None  # why updates were not checked, if they were not
    mismatch: Mismatch | None
    unchecked: str | None = None  # what of the traces was not re-computed, and why

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def _same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float64).view(np.uint64) == np.ascontiguousarray(
        b, np.float64
    ).view(np.uint64)


def recompute(
    ops: list[str], a: list[int], b: list[int], args: list[float], leaf_values: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild a graph (nodes in topological order, root last), run forward from
    ``leaf_values`` (one per node; only the leaves' are read) and backward.

        >>> v, g = recompute(["", "", "*"], [-1, -1, 0], [-1, -1, 1], [0, 0, 0], [2.0, 3.0, 0])
        >>> v.tolist(), g.tolist()
        ([2.0, 3.0, 6.0], [3.0, 2.0, 1.0])
    """
    built: list[Value] = []
    push = built.append
    for i, op in enumerate(ops):
        if not op:
            push(Value(leaf_values[i]))
        else:
            bi = b[i]
            push(apply(op, built[a[i]], built[bi] if bi >= 0 else None, args[i]))
    if built:
        built[-1].backward()
    return (
        np.array([v.data for v in built], dtype=np.float64),
        np.array([v.grad for v in built], dtype=np.float64),
    )


def _shape_lists(table) -> tuple[list[str], list[int], list[int], list[float]]:
    """A graph table's structure as the plain lists :func:`recompute` walks."""
    return (
        table["op"].tolist(),
        table["a"].fillna(-1).to_numpy(dtype=np.int64).tolist(),
        table["b"].fillna(-1).to_numpy(dtype=np.int64).tolist(),
        table["arg"].to_numpy(dtype=np.float64).tolist(),
    )


def verify_traces(view: RunView) -> tuple[int, int, Mismatch | None]:
    """(steps, nodes, first mismatch) over every traced step, in step order."""
    steps = nodes = 0
    shapes: dict[int, tuple] = {}
    traced = view.steps()
    traced = traced[traced["traced"]]
    for step, graph_key in zip(traced.index.tolist(), traced["graph_key"].tolist(), strict=True):
        table = view.nodes(step)
        if graph_key not in shapes:
            shapes[graph_key] = _shape_lists(table)
        ops, a, b, args = shapes[graph_key]
        value = table["value"].to_numpy(dtype=np.float64)
        grad = table["grad"].to_numpy(dtype=np.float64)
        got_v, got_g = recompute(ops, a, b, args, value.tolist())
        for what, expected, got in (("value", value, got_v), ("gradient", grad, got_g)):
            bad = np.flatnonzero(~_same_bits(expected, got))
            if bad.size:
                i = int(bad[0])
                return steps, nodes, Mismatch(
                    step, i, ops[i], str(table["label"].iloc[i]), what,
                    float(expected[i]), float(got[i]),
                )  # fmt: skip
        steps += 1
        nodes += len(ops)
    return steps, nodes, None


def _rule(spec: dict, n: int) -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
    """The engine optimizer's ``_update``, elementwise over ``n`` parameters: the same
    operations in the same order (``+ - * /`` and ``sqrt`` round alike in numpy and
    Python), so a recorded update re-computes bit for bit. Keeps the optimizer's state
    (velocity, moments, step count) from one call to the next."""
    kind, wd = spec["type"], float(spec.get("weight_decay", 0.0))
    if kind == "SGD":
        mu = float(spec.get("momentum", 0.0))
        velocity = np.zeros(n)

        def sgd(before: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
            nonlocal velocity
            g = grad + wd * before if wd else grad
            if mu:
                velocity = g = mu * velocity + g
            return before - lr * g

        return sgd
    b1, b2 = (float(b) for b in spec.get("betas", (0.9, 0.999)))
    eps = float(spec.get("eps", 1e-8))
    m, v, t = np.zeros(n), np.zeros(n), 0

    def adam(before: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
        nonlocal m, v, t
        t += 1
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t  # Python floats, as the engine computes them
        decoupled = kind == "AdamW"
        g = grad + wd * before if wd and not decoupled else grad
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        step = lr * (m / c1) / (np.sqrt(v / c2) + eps)
        return before * (1.0 - lr * wd) - step if decoupled else before - step

    return adam


CHECKED = ("SGD", "Adam", "AdamW")  # the optimizers whose updates verify re-computes


def verify_updates(view: RunView) -> tuple[int, str | None, str | None, Mismatch | None]:
    """(updates checked, optimizer, why not checked, first mismatch)."""
    spec = view.info.get("optimizer") or None
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in CHECKED:
        why = "the run recorded no optimizer" if kind is None else f"{kind} is not re-computed"
        return 0, kind, why, None
    steps = view.steps().index.to_numpy(dtype=np.int64)
    names = view.parameters()["name"].tolist()
    n = len(names)
    rule = _rule(spec, n)
    checked = 0
    for lo in range(0, len(steps), UPDATE_CHUNK):
        chunk = steps[lo : lo + UPDATE_CHUNK]
        upd = view.updates(steps=slice(int(chunk[0]), int(chunk[-1]) + 1))
        for step, rows in upd.groupby("step", sort=True):
            if len(rows) != n:
                continue  # a step without its update (the run was cut short)
            before = rows["value_before"].to_numpy(dtype=np.float64)
            grad = rows["grad"].to_numpy(dtype=np.float64)
            after = rows["value_after"].to_numpy(dtype=np.float64)
            got = rule(before, grad, float(rows["lr"].iloc[0]))
            bad = np.flatnonzero(~_same_bits(after, got))
            if bad.size:
                j = int(bad[0])
                return checked, kind, None, Mismatch(
                    int(step), None, "", names[j], "update", float(after[j]), float(got[j])
                )  # fmt: skip
            checked += n
    return checked, kind, None, None


def verify_run(view: RunView) -> VerifyResult:
    """Re-compute every traced step and every update of ``view``; see the module docstring."""
    spec = view.info.get("model")
    unchecked = None
    if isinstance(spec, dict) and spec.get("engine") == "foreign":
        steps, nodes, node_bad, unchecked = verify_foreign(view)
    else:
        steps, nodes, node_bad = verify_traces(view)
    updates, optimizer, skipped, update_bad = verify_updates(view)
    found = [m for m in (node_bad, update_bad) if m is not None]
    first = min(found, key=lambda m: (m.step, m.node is None)) if found else None
    return VerifyResult(steps, nodes, updates, optimizer, skipped, first, unchecked)


# A foreign engine's tanh and sigmoid are its own formulas (the lecture's tanh goes
# through exp): they are held to a few units in the last place, the rest to the bit.
OWN_FORMULA = {"tanh": 4, "sigmoid": 4}


def _ulps(a: float, b: float) -> int:
    """How many representable doubles lie between ``a`` and ``b`` (0: the same bits)."""
    x, y = np.array([a, b], dtype=np.float64).view(np.int64)
    x, y = (int(v) if v >= 0 else -(1 << 63) - int(v) for v in (x, y))  # order-preserving
    return abs(x - y)


def verify_foreign(view: RunView) -> tuple[int, int, Mismatch | None, str | None]:
    """Traces of a run recorded from another micrograd-style engine (recording/foreign.py).

    Each node of a known op is re-executed on its operands' *recorded* values and
    compared with its recorded value; ops gradtrace does not know are listed, not
    judged. Gradients are not re-computed: that engine added each node's
    contributions in its own (set) order, which a float sum depends on.
    """
    steps = nodes = 0
    unknown: set[str] = set()
    traced = view.steps()
    traced = traced[traced["traced"]]
    for step in traced.index.tolist():
        table = view.nodes(step)
        ops, a, b, args = _shape_lists(table)
        value = table["value"].to_numpy(dtype=np.float64).tolist()
        for i, op in enumerate(ops):
            if not op:
                continue
            if op not in OPS:
                unknown.add(op)
                continue
            got = apply(op, Value(value[a[i]]), Value(value[b[i]]) if b[i] >= 0 else None, args[i])
            off = _ulps(value[i], got.data)
            if off > OWN_FORMULA.get(op, 0):
                label = str(table["label"].iloc[i])
                return steps, nodes, Mismatch(step, i, op, label, "value", value[i], got.data), None
        steps += 1
        nodes += len(ops)
    why = "gradients (added in the recording engine's own order)"
    if unknown:
        why += "; ops gradtrace cannot re-execute: " + ", ".join(sorted(unknown))
    return steps, nodes, None, why
