"""Where a non-finite number came from: the one definition every surface uses.

    >>> run = tracer.connect("runs.db").run("moons")      # doctest: +SKIP
    >>> origin = run.first_nonfinite()  # an Origin, or None  # doctest: +SKIP
    >>> origin.kind, origin.node, origin.op, origin.story  # doctest: +SKIP
    ('forward', 127, '**2', 'step 17: `**2` of 1.3e154 overflowed to inf (node 127) ...')

The definition
--------------
A step runs forward, then backward, then the update; its metrics are logged with
it. The *origin* is the first step where a NaN or ±inf appears, and within that
step the first of these four kinds, in this order:

1. ``forward``: the first node in topological order whose value is non-finite.
   Its parents come before it, so their values are all finite: this node's op
   made the number (``**2`` of 1.3e154 overflowed to inf, ``log`` of 0 gave
   -inf, ``/`` of 0 and 0 gave nan), or it is a leaf fed a non-finite input.
2. ``backward``: every value is finite, and a node's backward rule sent a
   non-finite gradient to a parent out of finite numbers (``log`` at 0 sends inf,
   ``**0.5`` at 0 too, ``*`` of 1e200 by a gradient of 1e200). Backward runs in
   reverse topological order, so of several such nodes the last one is first.
   The rules are the engine's op table's; of a foreign op recorded as written,
   which the table does not know, the story says it cannot judge the rule.
   If no rule sent one, the node whose gradient is non-finite although every
   gradient sent to it was finite is named: the sum overflowed, or the gradient
   was non-finite before ``backward()`` (a missed ``zero_grad``).
3. ``update``: values and gradients are finite, and the update took a parameter
   from a finite value to a non-finite one (a huge lr times a finite gradient).
4. ``metric``: a logged metric is non-finite while everything else is finite.

With a node trace of the step the answer is exact. Without one (``capture=
"params"``, or a step between ``every=k`` traces) only the parameters, their
gradients, the updates and the metrics were recorded: a parameter value that is
non-finite at the first step counts as a forward origin, a non-finite parameter
gradient as a backward origin (node unknown), and ``Origin.exact`` is False with
a sentence in ``story`` saying so.

:func:`step_origin` is the core: one step's arrays in, its origin out (numpy over
every node at once). ``tracer/analysis/origins.py`` applies it to a stored run
(``find_origin``, behind ``RunView.first_nonfinite()``) and to a run being
recorded (``LiveCheck``, behind the recorder's warning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from gradtrace.engine import OP_TABLE
from gradtrace.tracer.analysis.origintypes import NodeTrace, Origin, ParentValue, StepData

KINDS = ("forward", "backward", "update", "metric")  # the order things happen in a step


def num(x: float | None) -> str:
    """A number for a sentence: ``1.3e154``, ``-inf``, ``nan``, ``0.25``."""
    if x is None:
        return "-"
    return f"{x:.6g}".replace("e+", "e")


def op_text(op: str, arg: float) -> str:
    """The op as written: ``**`` with its exponent, the op code otherwise."""
    return f"**{arg:g}" if op == "**" and not math.isnan(arg) else op


class _Names:
    """Names of one step's nodes: parameter name, else label, else None."""

    def __init__(self, nodes: NodeTrace, names: Sequence[str]):
        self.nodes, self.names = nodes, names

    def param(self, i: int) -> int | None:
        p = int(self.nodes.params[i])
        return p if p >= 0 else None

    def name(self, i: int) -> str | None:
        p = self.param(i)
        if p is not None and p < len(self.names):
            return str(self.names[p])
        return str(self.nodes.labels[i]) or None

    def op(self, i: int) -> str:
        return op_text(str(self.nodes.ops[i]), float(self.nodes.args[i]))

    def parents(self, i: int, sent: Sequence[float | None] = (None, None)) -> tuple:
        out = []
        for j, s in zip((self.nodes.a[i], self.nodes.b[i]), sent, strict=True):
            if j >= 0:
                j = int(j)
                value = float(self.nodes.values[j])
                out.append(ParentValue(j, self.op(j), self.name(j), value, s, self.param(j)))
        return tuple(out)

    def called(self, i: int) -> str:
        """``node 3 (parameter `w`)`` / ``node 5 (`loss`)`` / ``node 7``."""
        name = self.name(i)
        if name is None:
            return f"node {i}"
        what = "parameter " if self.param(i) is not None else ""
        return f"node {i} ({what}`{name}`)"

    def origin(self, step: int, kind: str, i: int, parents: tuple, story: str) -> Origin:
        """The origin at node ``i`` of a traced step."""
        v, g = float(self.nodes.values[i]), float(self.nodes.grads[i])
        return Origin(
            step, kind, i, self.op(i), self.name(i), v, g, parents, True, story, self.param(i)
        )


def _forward(step: int, nodes: NodeTrace, names: Sequence[str]) -> Origin | None:
    bad = np.flatnonzero(~np.isfinite(nodes.values))
    if not bad.size:
        return None
    i = int(bad[0])
    n = _Names(nodes, names)
    value = float(nodes.values[i])
    parents = n.parents(i)
    if not parents:
        story = f"step {step}: leaf {n.called(i)} was fed {num(value)}"
    else:
        inputs = " and ".join(num(p.value) for p in parents)
        verb = "overflowed to" if math.isinf(value) and all(p.value for p in parents) else "gave"
        story = f"step {step}: `{n.op(i)}` of {inputs} {verb} {num(value)} ({n.called(i)})"
    return n.origin(step, "forward", i, parents, story)


def _sent(nodes: NodeTrace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradient every node's rule (the engine's ``OP_TABLE``) sent to its first
    and second operand, NaN where there is none; and which nodes hold an op the
    table does not know, whose rule is unknown (they sent NaN too)."""
    n = len(nodes.values)
    to_a, to_b = np.full(n, np.nan), np.full(n, np.nan)
    known = nodes.a < 0  # leaves send nothing: known
    v, g = nodes.values, nodes.grads
    x = v[np.maximum(nodes.a, 0)]  # y: the second operand, or the exponent of **
    y = np.where(nodes.b >= 0, v[np.maximum(nodes.b, 0)], nodes.args)
    for code, op in OP_TABLE.items():
        m = nodes.ops == code
        if not m.any():
            continue
        known |= m
        with np.errstate(all="ignore"):
            sent = op.vbackward(x[m], y[m], v[m], g[m])
        to_a[m] = sent[0]
        if len(sent) == 2:
            to_b[m] = sent[1]
    return to_a, to_b, ~known


def _backward(step: int, nodes: NodeTrace, names: Sequence[str]) -> Origin | None:
    if np.isfinite(nodes.grads).all():
        return None
    n = _Names(nodes, names)
    to_a, to_b, unknown = _sent(nodes)
    has_a, has_b = nodes.a >= 0, nodes.b >= 0
    finite_g = np.isfinite(nodes.grads)
    made = finite_g & ~unknown & ((has_a & ~np.isfinite(to_a)) | (has_b & ~np.isfinite(to_b)))
    rows = np.flatnonzero(made)
    # A node of an op the table does not know may have made it: its gradient is
    # finite, an operand's is not, and its rule cannot be run to tell.
    bad_operand = (has_a & ~finite_g[np.maximum(nodes.a, 0)]) | (
        has_b & ~finite_g[np.maximum(nodes.b, 0)]
    )
    maybe = np.flatnonzero(finite_g & unknown & bad_operand)
    if maybe.size and (not rows.size or maybe[-1] > rows[-1]):
        i = int(maybe[-1])  # backward met it before any known rule that made one
        bad = next(j for j in (nodes.a[i], nodes.b[i]) if j >= 0 and not finite_g[j])
        story = (
            f"step {step}: {n.called(bad)} has gradient {num(float(nodes.grads[bad]))} and is an "
            f"operand of `{n.op(i)}` ({n.called(i)}, grad {num(float(nodes.grads[i]))}), an op "
            f"gradtrace does not know: it cannot judge whether the backward rule of `{n.op(i)}`"
            " sent it; every value of the step was finite"
        )
        return n.origin(step, "backward", i, n.parents(i), story)
    if rows.size:
        i = int(rows[-1])  # backward walks the nodes last to first
        parents = n.parents(i, (float(to_a[i]), float(to_b[i])))
        bad = next(p for p in parents if not math.isfinite(p.sent))
        at = " and ".join(num(p.value) for p in parents)
        story = (
            f"step {step}: the backward rule of `{n.op(i)}` at {at} ({n.called(i)}, "
            f"grad {num(float(nodes.grads[i]))}) sent {num(bad.sent)} to "
            f"{n.called(bad.node)}; every value of the step was finite"
        )
        return n.origin(step, "backward", i, parents, story)
    # No rule made it: a gradient that was non-finite before backward, or a sum of
    # finite gradients that overflowed.
    total = np.zeros(len(nodes.values))
    for idx, sent in ((nodes.a, to_a), (nodes.b, to_b)):
        keep = (idx >= 0) & ~unknown
        with np.errstate(all="ignore"):
            np.add.at(total, idx[keep], sent[keep])
    i = int(np.flatnonzero(~finite_g)[-1])
    grad = float(nodes.grads[i])
    why = (
        "the sum of the finite gradients sent to it overflowed"
        if not math.isfinite(total[i])
        else "every gradient sent to it was finite: it was non-finite before backward() "
        "(is zero_grad() called every step?)"
    )
    story = f"step {step}: {n.called(i)} has gradient {num(grad)}; {why}"
    return n.origin(step, "backward", i, n.parents(i), story)


def _first_bad(values: np.ndarray | None) -> int | None:
    if values is None or not len(values):
        return None
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else None


def _param_name(s: StepData, j: int) -> str:
    return str(s.names[j]) if j < len(s.names) else f"p{j}"


def _from_params(s: StepData, kind: str) -> Origin | None:
    """Forward/backward seen through the parameter arrays alone (no node trace)."""
    if kind == "forward":
        j = _first_bad(s.param_data)
        if j is None:
            return None
        value = float(s.param_data[j])
        story = f"step {s.step}: parameter `{_param_name(s, j)}` held {num(value)} from the start"
    else:
        j = _first_bad(s.param_grad)
        if j is None:
            return None
        value = float(s.param_data[j]) if s.param_data is not None else math.nan
        g = float(s.param_grad[j])
        story = f"step {s.step}: parameter `{_param_name(s, j)}` got gradient {num(g)}"
    grad = float(s.param_grad[j]) if s.param_grad is not None else None
    return Origin(s.step, kind, None, None, _param_name(s, j), value, grad, (), False, story, j)


def _update(s: StepData) -> Origin | None:
    j = _first_bad(s.param_after)
    if j is None:
        return None
    before = float(s.param_data[j]) if s.param_data is not None else math.nan
    grad = float(s.param_grad[j]) if s.param_grad is not None else math.nan
    after = float(s.param_after[j])
    lr = f", lr {num(s.lr)}" if s.lr is not None else ""
    story = (
        f"step {s.step}: the update took parameter `{_param_name(s, j)}` from {num(before)} "
        f"to {num(after)} (grad {num(grad)}{lr})"
    )
    return Origin(
        s.step, "update", None, None, _param_name(s, j), after, grad, (), True, story,
        param=j, before=before, lr=s.lr,
    )  # fmt: skip


def _metric(s: StepData) -> Origin | None:
    for name in sorted(s.metrics):
        value = float(s.metrics[name])
        if not math.isfinite(value):
            story = f"step {s.step}: metric `{name}` was logged as {num(value)}"
            return Origin(s.step, "metric", None, None, name, value, None, (), True, story)
    return None


def step_origin(
    s: StepData, kinds: Sequence[str] = KINDS, traced: bool | None = None
) -> Origin | None:
    """The origin within one step, trying ``kinds`` in the order of :data:`KINDS`.

    ``traced`` says whether the step has a node trace (default: ``s.nodes`` given);
    without one the answer is marked not exact.
    """
    found = None
    for kind in KINDS:
        if kind not in kinds:
            continue
        if kind in ("forward", "backward"):
            if s.nodes is not None:
                found = (_forward if kind == "forward" else _backward)(s.step, s.nodes, s.names)
            else:
                found = _from_params(s, kind)
        elif kind == "update":
            found = _update(s)
        else:
            found = _metric(s)
        if found is not None:
            break
    if found is None:
        return None
    traced = s.nodes is not None if traced is None else traced
    if traced:
        return replace(found, exact=True)
    note = (
        f" (step {s.step} has no node trace, so only the parameters, updates and metrics "
        "were checked: an earlier op of the step may have made it)"
    )
    return replace(found, exact=False, story=found.story + note)


def upstream_params(a: np.ndarray, b: np.ndarray, params: np.ndarray, node: int) -> list[int]:
    """The parameter indices ``node`` depends on (its ancestors that are parameters):
    the parameters that fed a forward origin, and whose gradients a backward one
    reaches. One pass from ``node`` down, as every parent comes before its child."""
    seen = np.zeros(node + 1, dtype=bool)
    seen[node] = True
    a_list, b_list = a[: node + 1].tolist(), b[: node + 1].tolist()
    for j in range(node, -1, -1):
        if seen[j]:
            if a_list[j] >= 0:
                seen[a_list[j]] = True
            if b_list[j] >= 0:
                seen[b_list[j]] = True
    found = params[: node + 1][seen]
    return sorted(int(p) for p in found[found >= 0])
