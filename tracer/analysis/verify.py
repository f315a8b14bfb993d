"""Does a recording re-compute bit for bit? Rebuild every traced step and check.

    >>> result = store.run("moons").verify()           # doctest: +SKIP
    >>> result.ok, result.steps, result.nodes          # doctest: +SKIP
    (True, 100, 6581800)

For every node-traced step the recorded graph is rebuilt from its stored shape
(op codes, operands, the exponent of each ``**``) with ``engine.apply`` (the op
table's Value methods), its leaves fed the recorded leaf values; the engine then
computes every inner value forward and every gradient with ``backward()``,
exactly as training did. Each value and gradient is compared with the recorded
one bit for bit (:func:`same_bits`: a NaN matches any NaN, -0.0 does not match
0.0). A rebuilt graph numbers its nodes in the recorded order because the
topological order depends only on the structure.

A node whose op is not in the engine's op table (a foreign op recorded as
written) cannot be re-executed: it is fed its recorded value, its value and the
gradients that flow back through it (its ancestors') are not checked, and
``VerifyResult.skipped_nodes`` says so; everything else still is.

A run recorded from another micrograd-style engine is checked node by node
instead (:func:`verify_foreign`): each known op re-executed on its operands'
recorded values; its gradients, summed in that engine's own order, are reported
in ``skipped_nodes`` as not re-computed, with any ops it cannot re-execute.

Parameter updates are re-computed where the run recorded its optimizer's
``spec()``, by that optimizer's own :meth:`~gradtrace.engine.optim.Optimizer.rule`
over every parameter at once, step after step, from the recorded values,
gradients and learning rates. Hand-written updates are reported as not checked.
An update that does not re-compute is a mismatch only if the recording
contradicts itself: a parameter's value before a step must be the value after
the previous one and after it the value before the next, and the value and
gradient of its update row those of the step's parameter arrays. Where they agree
with each other, the update did not follow from what was logged (gradients
changed after ``log()``, such as clipping; a logged ``lr`` that is not the
optimizer's; parameters changed outside the optimizer), so the updates from that
step on are reported as not checked, with the reason, rather than as a mismatch.
The first mismatch is reported: step, node (or parameter), op, expected
(recorded) and got (re-computed).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from gradtrace.engine import OP_TABLE, Value, apply, optim
from gradtrace.tracer.analysis.difftypes import same_bits

if TYPE_CHECKING:
    import pandas as pd
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
    skipped_nodes: str | None = None  # what of the traces was not re-computed, and why

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def cannot_check(ops: list[str], a: list[int], b: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(values, gradients) that cannot be re-computed, as boolean masks: the values
    of ops the engine's table does not know, and the gradients of every node whose
    gradient flows back through one (its ancestors: operands, recursively)."""
    n = len(ops)
    values = np.array([bool(op) and op not in OP_TABLE for op in ops], dtype=bool)
    grads = np.zeros(n, dtype=bool)
    for i in range(n - 1, -1, -1):  # children come after their operands
        if values[i] or grads[i]:
            for j in (a[i], b[i]):
                if j >= 0:
                    grads[j] = True
    return values, grads


def recompute(
    ops: list[str], a: list[int], b: list[int], args: list[float], recorded: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild a graph (nodes in topological order, root last), run forward from the
    ``recorded`` values of its leaves (one per node; the others' are not read, but
    for ops the table does not know, which are fed theirs) and backward.

        >>> v, g = recompute(["", "", "*"], [-1, -1, 0], [-1, -1, 1], [0, 0, 0], [2.0, 3.0, 0])
        >>> v.tolist(), g.tolist()
        ([2.0, 3.0, 6.0], [3.0, 2.0, 1.0])
    """
    built: list[Value] = []
    push = built.append
    for i, op in enumerate(ops):
        if op in OP_TABLE:
            bi = b[i]
            push(apply(op, built[a[i]], built[bi] if bi >= 0 else None, args[i]))
        else:  # a leaf, or an op that cannot be re-executed: its recorded value
            push(Value(recorded[i]))
    if built:
        built[-1].backward()
    return (
        np.array([v.data for v in built], dtype=np.float64),
        np.array([v.grad for v in built], dtype=np.float64),
    )


def _shape(table) -> tuple:
    """A graph table's structure as the plain lists :func:`recompute` walks, and the
    masks of what :func:`cannot_check`."""
    ops = table["op"].tolist()
    a = table["a"].fillna(-1).to_numpy(dtype=np.int64).tolist()
    b = table["b"].fillna(-1).to_numpy(dtype=np.int64).tolist()
    args = table["arg"].to_numpy(dtype=np.float64).tolist()
    return ops, a, b, args, *cannot_check(ops, a, b)


def _traced(view: RunView) -> Iterator[tuple[int, pd.DataFrame, tuple]]:
    """Each traced step, its node table and its graph's shape (decoded once a graph)."""
    shapes: dict[int, tuple] = {}
    traced = view.steps()
    traced = traced[traced["traced"]]
    for step, graph_key in zip(traced.index.tolist(), traced["graph_key"].tolist(), strict=True):
        table = view.nodes(step)
        if graph_key not in shapes:
            shapes[graph_key] = _shape(table)
        yield step, table, shapes[graph_key]


def verify_traces(view: RunView) -> tuple[int, int, Mismatch | None, str | None]:
    """(steps, nodes, first mismatch, what was not checked) over every traced step."""
    steps = nodes = skipped_values = skipped_grads = 0
    foreign: set[str] = set()
    for step, table, (ops, a, b, args, skip_v, skip_g) in _traced(view):
        value = table["value"].to_numpy(dtype=np.float64)
        grad = table["grad"].to_numpy(dtype=np.float64)
        got_v, got_g = recompute(ops, a, b, args, value.tolist())
        for what, expected, got, skip in (
            ("value", value, got_v, skip_v),
            ("gradient", grad, got_g, skip_g),
        ):
            bad = np.flatnonzero(~same_bits(expected, got) & ~skip)
            if bad.size:
                i = int(bad[0])
                return steps, nodes, Mismatch(
                    step, i, ops[i], str(table["label"].iloc[i]), what,
                    float(expected[i]), float(got[i]),
                ), _skipped(foreign, skipped_values, skipped_grads)  # fmt: skip
        steps += 1
        nodes += len(ops) - int((skip_v | skip_g).sum())
        skipped_values += int(skip_v.sum())
        skipped_grads += int(skip_g.sum())
        foreign.update(op for op, s in zip(ops, skip_v, strict=True) if s)
    return steps, nodes, None, _skipped(foreign, skipped_values, skipped_grads)


def _skipped(foreign: set[str], values: int, grads: int) -> str | None:
    if not foreign:
        return None
    names = ", ".join(map(repr, sorted(foreign)))
    return (
        f"{values} values of op {names}, which gradtrace cannot re-execute, and "
        f"{grads} gradients that flow back through them"
    )


@dataclass
class _Update:
    """One step's update as recorded, one array element per parameter."""

    step: int
    before: np.ndarray
    grad: np.ndarray
    after: np.ndarray
    lr: float


def _updates(view: RunView, n: int) -> Iterator[_Update]:
    """Every step's update with a row for each of the ``n`` parameters, in step order."""
    steps = view.steps().index.to_numpy(dtype=np.int64)
    for lo in range(0, len(steps), UPDATE_CHUNK):
        chunk = steps[lo : lo + UPDATE_CHUNK]
        upd = view.updates(steps=slice(int(chunk[0]), int(chunk[-1]) + 1))
        for step, rows in upd.groupby("step", sort=True):
            if len(rows) != n:
                continue  # a step without its update (the run was cut short)
            yield _Update(
                int(step),
                rows["value_before"].to_numpy(dtype=np.float64),
                rows["grad"].to_numpy(dtype=np.float64),
                rows["value_after"].to_numpy(dtype=np.float64),
                float(rows["lr"].iloc[0]),
            )


def _not_followed(u: _Update, got: np.ndarray, kind: str) -> str:
    """Why the updates from ``u.step`` on are not checked (the rows agree with each
    other, but the update did not follow from the logged gradients and lr)."""
    why = (
        f"from step {u.step} on: the update of step {u.step} does not follow from its logged "
        f"gradients and lr by {kind} (gradients changed after log(), e.g. clipped; a logged "
        "lr that is not the optimizer's; or parameters changed outside the optimizer)"
    )
    with np.errstate(all="ignore"):
        fit = u.lr * (u.before - u.after) / (u.before - got)
    fit = fit[np.isfinite(fit) & (u.before != got)]
    if fit.size and np.allclose(fit, fit[0], rtol=1e-9, atol=0.0) and fit[0] != u.lr:
        why += f"; its updates fit lr = {fit[0]:.6g} rather than the logged {u.lr:.6g}"
    return why


def verify_updates(view: RunView) -> tuple[int, str | None, str | None, Mismatch | None]:
    """(updates checked, optimizer, why not checked, first mismatch)."""
    spec = view.info.get("optimizer") or None
    kind = spec.get("type") if isinstance(spec, dict) else None
    opt = optim.from_spec(spec)
    if opt is None:
        why = "the run recorded no optimizer" if kind is None else f"{kind} is not re-computed"
        return 0, kind, why, None
    names = view.parameters()["name"].tolist()
    n = len(names)
    state = [np.zeros(n) for _ in opt.state_names]
    checked = 0
    # Each update with the previous and the next one, to see whether the rows agree.
    rows = itertools.chain([None], _updates(view, n), [None])
    for t, (prev, u, nxt) in enumerate(_triples(rows), start=1):
        got, *state = opt.rule(u.before, u.grad, u.lr, t, *state, xp=np)
        bad = np.flatnonzero(~same_bits(u.after, got))
        if bad.size:
            # The last update has no next one to agree with: a mismatch stays one.
            agree = np.zeros(n, dtype=bool) if nxt is None else same_bits(u.after, nxt.before)
            if prev is not None:
                agree &= same_bits(prev.after, u.before)
            agree &= _rows_match_arrays(view, u)
            broken = bad[~agree[bad]]
            if not broken.size:
                return checked, kind, _not_followed(u, got, kind), None
            j = int(broken[0])
            return checked, kind, None, Mismatch(
                u.step, None, "", names[j], "update", float(u.after[j]), float(got[j])
            )  # fmt: skip
        checked += n
    return checked, kind, None, None


def _rows_match_arrays(view: RunView, u: _Update) -> np.ndarray:
    """Whether each parameter's update row holds the value and gradient of the step's
    parameter arrays: the recorder wrote both from one read of the parameters."""
    match = np.ones(len(u.before), dtype=bool)
    for which, column in (("data", u.before), ("grad", u.grad)):
        arrays = view.param_arrays(steps=[u.step], which=which)
        if len(arrays):
            match &= same_bits(arrays.to_numpy(dtype=np.float64)[0], column)
    return match


def _triples(items: Iterator) -> Iterator[tuple]:
    """(previous, item, next) for every item between the first and the last."""
    a, b, c = itertools.tee(items, 3)
    next(b, None)
    next(c, None)
    next(c, None)
    return zip(a, b, c)


def verify_run(view: RunView) -> VerifyResult:
    """Re-compute every traced step and every update of ``view``; see the module docstring."""
    model = view.info.get("model")
    foreign = isinstance(model, dict) and model.get("engine") == "foreign"
    steps, nodes, node_bad, skipped_nodes = (verify_foreign if foreign else verify_traces)(view)
    updates, optimizer, skipped, update_bad = verify_updates(view)
    found = [m for m in (node_bad, update_bad) if m is not None]
    first = min(found, key=lambda m: (m.step, m.node is None)) if found else None
    return VerifyResult(steps, nodes, updates, optimizer, skipped, first, skipped_nodes)


# A foreign engine's tanh and sigmoid are its own formulas (the lecture's tanh goes
# through exp): they are held to a few units in the last place, the rest to the bit.
OWN_FORMULA = {"tanh": 4, "sigmoid": 4}


def _agrees(recorded: float, got: float, op: str) -> bool:
    """:func:`same_bits`, or within the op's :data:`OWN_FORMULA` units in the last place."""
    pair = np.array([recorded, got], dtype=np.float64)
    if same_bits(pair[:1], pair[1:])[0]:
        return True
    x, y = (int(v) if v >= 0 else -(1 << 63) - int(v) for v in pair.view(np.int64))
    return not np.isnan(pair).any() and abs(x - y) <= OWN_FORMULA.get(op, 0)


def verify_foreign(view: RunView) -> tuple[int, int, Mismatch | None, str | None]:
    """Traces of a run recorded from another micrograd-style engine (recording/foreign.py):
    (steps, nodes, first mismatch, what was not checked), as :func:`verify_traces`.

    Each node of a known op is re-executed on its operands' *recorded* values and
    compared with its recorded value; ops the op table does not know are listed, not
    judged. Gradients are not re-computed: that engine added each node's
    contributions in its own (set) order, which a float sum depends on.
    """
    steps = nodes = 0
    foreign: set[str] = set()
    for step, table, (ops, a, b, args, skip_v, _) in _traced(view):
        value = table["value"].to_numpy(dtype=np.float64).tolist()
        for i, op in enumerate(ops):
            if not op or skip_v[i]:
                continue
            bi = b[i]
            got = apply(op, Value(value[a[i]]), Value(value[bi]) if bi >= 0 else None, args[i])
            if not _agrees(value[i], got.data, op):
                label = str(table["label"].iloc[i])
                return steps, nodes, Mismatch(step, i, op, label, "value", value[i], got.data), None
        steps += 1
        nodes += len(ops) - int(skip_v.sum())
        foreign.update(op for op, s in zip(ops, skip_v, strict=True) if s)
    why = "gradients (added in the recording engine's own order)"
    if foreign:
        names = ", ".join(map(repr, sorted(foreign)))
        why += f"; values of ops gradtrace cannot re-execute: {names}"
    return steps, nodes, None, why
