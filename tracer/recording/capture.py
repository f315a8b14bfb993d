"""Turning a step's graph and parameters into arrays, without touching the database.

    >>> from gradtrace.engine import MLP, Value
    >>> model = MLP(2, [2, 1], seed=0)
    >>> cap = GraphCapture({id(p): i for i, p in enumerate(model.parameters())})
    >>> loss = model([Value(1.0), Value(2.0)]); loss.backward()
    >>> snap = cap.capture(loss)
    >>> snap.shape.n_nodes == len(loss.topo()), snap.new_shape
    (True, True)

The same program gives the same shape every step, so a shape is compared, not
rebuilt: each step's node list is checked against the shapes already seen by
identity (``engine.layout.SameLayout``: every op, exponent and operand, in C
loops), and only a new shape has its position arrays built and is stored (once)
with its labels.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from time import perf_counter
from typing import Any

import numpy as np
from gradtrace.engine import Value, structure
from gradtrace.engine.layout import SameLayout
from gradtrace.tracer.storage.codec import (
    encode_kinds,
    encode_ops,
    int32_bytes,
    needs_raw,
    pack_raw,
    row,
    rows,
    sql_float,
)
from gradtrace.tracer.storage.models import Metric, Update

_get_data = attrgetter("data")
_get_grad = attrgetter("grad")
_get_label = attrgetter("label")
_get_exponent = attrgetter("exponent")


@dataclass(eq=False)
class Shape:
    """One distinct graph structure; ``key`` is its ``graphs.graph_key`` once written."""

    ops: list[str]
    a: list[int]  # first operand of each node, -1 for none
    b: list[int]  # second operand, -1 for none
    leaves: list[int]  # node indices of leaves
    leaf_params: list[int]  # parameter idx of each leaf, -1 for inputs and constants
    first_step: int
    labels: list[str] = field(default_factory=list)
    exponents: list[float | None] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # Value.kind; "parameter" if watched
    key: int | None = None
    layout: SameLayout | None = None  # made on first use, see matches()

    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    def matches(self, nodes: list[Value], param_index: dict[int, int]) -> bool:
        """True if ``nodes`` (a step's ``topo()``) is this shape: the same op,
        exponent and operand positions at every node, and the same watched
        parameter at every leaf."""
        if self.layout is None:
            self.layout = SameLayout(self.ops, self.a, self.b, self.exponents)
        if not self.layout(nodes):
            return False
        get = param_index.get
        return [get(id(nodes[i]), -1) for i in self.leaves] == self.leaf_params

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256()
        h.update("\x00".join(self.ops).encode("utf-8", "surrogatepass"))
        for ints in (self.a, self.b, self.leaf_params):
            h.update(array("q", ints).tobytes())
        return h.hexdigest()

    def node_params(self) -> list[int]:
        """Parameter idx of every node, -1 where it is not a watched parameter."""
        params = [-1] * self.n_nodes
        for i, p in zip(self.leaves, self.leaf_params, strict=True):
            params[i] = p
        return params

    def columns(self) -> dict[str, Any]:
        """The column-wise form stored in ``graphs`` (see ``storage.models.Graph``)."""
        return {
            "ops": encode_ops(self.ops),
            "a": int32_bytes(self.a),
            "b": int32_bytes(self.b),
            "params": int32_bytes(self.node_params()),
            "labels": {str(i): s for i, s in enumerate(self.labels) if s},
            "args": {str(i): _json_float(x) for i, x in enumerate(self.exponents) if x is not None},
            "kinds": encode_kinds(self.kinds),
        }


def _json_float(x: float) -> float | str:
    """JSON has no NaN/inf (PostgreSQL's json type rejects them): those become strings,
    "nan", "inf", "-inf", which ``float()`` and numpy read back."""
    return x if math.isfinite(x) else repr(float(x))


@dataclass(eq=False)
class Snapshot:
    """One step's node trace: its shape and every node's value and gradient.

    ``data`` and ``grad`` are fresh float64 arrays owned by the snapshot: the
    writer encodes them later, maybe on its thread, while training has moved on.
    """

    shape: Shape
    new_shape: bool
    data: np.ndarray
    grad: np.ndarray
    first_nonfinite: int | None


MAX_SHAPES = 16  # shapes remembered per run; a graph that changes every step stays bounded


class GraphCapture:
    """Remembers the shapes of one run and snapshots a step's graph against them.

    Only the ``MAX_SHAPES`` most recently seen are kept: a shape seen again after
    being forgotten is stored again, a new row in ``graphs``.
    """

    def __init__(self, param_index: dict[int, int]):
        self.param_index = param_index  # id(parameter Value) -> parameter idx
        self.shapes: list[Shape] = []
        self.timings = CaptureTimings()

    def capture(self, root: Value, step: int = 0) -> Snapshot:
        t0 = perf_counter()
        nodes = root.topo()
        shape = self._find(nodes)
        new = shape is None
        if shape is None:
            nodes, ops, a, b = structure(root)
            leaves = _positions(ops, "")
            get = self.param_index.get
            leaf_params = [get(id(nodes[i]), -1) for i in leaves]
            shape = Shape(ops, a, b, leaves, leaf_params, step)
            shape.labels = list(map(_get_label, nodes))
            shape.exponents = list(map(_get_exponent, nodes))
            shape.kinds = _kinds(nodes, leaves, leaf_params)
            self.shapes.append(shape)
            del self.shapes[:-MAX_SHAPES]  # the least recently seen go first
        t1 = perf_counter()
        # One C loop per array straight from the nodes: a comprehension first
        # makes a list as long as the graph, and numpy then reads every float a
        # second time (the floats are scattered in memory: the reads dominate).
        n = len(nodes)
        data = np.fromiter(map(_get_data, nodes), np.float64, n)
        grad = np.fromiter(map(_get_grad, nodes), np.float64, n)
        snap = Snapshot(shape, new, data, grad, first_nonfinite(data, grad))
        self.timings.add(t1 - t0, perf_counter() - t1)
        return snap

    def _find(self, nodes: list[Value]) -> Shape | None:
        # Newest first: a run's graph rarely changes, and when it does (a smaller
        # last batch) it usually changes back.
        for shape in reversed(self.shapes):
            if shape.matches(nodes, self.param_index):
                if shape is not self.shapes[-1]:
                    self.shapes.remove(shape)
                    self.shapes.append(shape)
                return shape
        return None


def _kinds(nodes: list[Value], leaves: list[int], leaf_params: list[int]) -> list[str]:
    """Every node's kind: a watched parameter is one whatever the engine says, the
    other leaves are what ``Value.kind`` says. Read with the labels, once a shape:
    a program builds the same leaves every step."""
    kinds = [""] * len(nodes)
    for i, p in zip(leaves, leaf_params, strict=True):
        kinds[i] = "parameter" if p >= 0 else nodes[i].kind
    return kinds


def _positions(items: list, value: object) -> list[int]:
    """Every index of ``value`` in ``items``; ``list.index`` scans in C."""
    found: list[int] = []
    i = -1
    try:
        while True:
            i = items.index(value, i + 1)
            found.append(i)
    except ValueError:
        return found


def first_nonfinite(data: np.ndarray, grad: np.ndarray) -> int | None:
    """Index of the first node whose value or gradient is NaN or inf."""
    bad = np.flatnonzero(~(np.isfinite(data) & np.isfinite(grad)))
    return int(bad[0]) if bad.size else None


@dataclass
class CaptureTimings:
    """Training-thread seconds spent in :meth:`GraphCapture.capture`, summed over steps."""

    shape: float = 0.0  # walking the graph and checking its shape
    copy: float = 0.0  # copying values and gradients out of the nodes
    steps: int = 0

    def add(self, shape: float, copy: float) -> None:
        self.shape += shape
        self.copy += copy
        self.steps += 1


def update_rows(
    run_key: int,
    step: int,
    before: np.ndarray,
    grad: np.ndarray,
    after: np.ndarray,
    lr: float | None,
) -> UpdateRows:
    """Rows for ``updates``: one per parameter, NaN as NULL plus exact bits in ``raw``.

        >>> rows = update_rows(1, 0, np.array([1.0]), np.array([0.5]), np.array([0.75]), 0.5)
        >>> list(rows)
        [(1, 0, 0, 1.0, 0.5, 0.75, 0.5, None)]

    The rows are built on first use: ``log()`` hands the arrays over and the
    writer's thread builds the rows, off the training thread (the arrays are
    fresh ones nobody writes again).
    """
    return UpdateRows((run_key, step, before, grad, after, lr))


class UpdateRows(Sequence):
    """The ``updates`` rows of one step's update, made from its arrays on first use."""

    __slots__ = ("_args", "_rows")

    def __init__(self, args: tuple[Any, ...]):
        self._args: tuple[Any, ...] | None = args
        self._rows: list[tuple[Any, ...]] | None = None

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows, self._args = _update_rows(self._args), None
        return self._rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        return self.rows[i]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"UpdateRows({self.rows!r})"


def _update_rows(args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of :func:`update_rows` (its arguments as one tuple), built now."""
    run_key, step, before, grad, after, lr = args
    b, g, f = (np.asarray(x, dtype=np.float64) for x in (before, grad, after))
    n = len(b)
    columns = {"value_before": b.tolist(), "grad": g.tolist(), "value_after": f.tolist()}
    raw: list[bytes | None] = [None] * n
    stack = np.stack([b, g, f])
    special = np.isnan(stack) | ((stack == 0.0) & np.signbit(stack))
    lr_special = lr is not None and needs_raw(lr)
    odd = range(n) if lr_special else np.flatnonzero(special.any(axis=0)).tolist()
    for i in odd:
        exact = [col[i] for col in columns.values()]
        raw[i] = pack_raw(*exact, math.nan if lr is None else lr)
        for col, x in zip(columns.values(), exact, strict=True):
            col[i] = sql_float(x)
    return rows(
        Update,
        n,
        run_key=run_key,
        param=range(n),
        step=step,
        lr=None if lr is None else sql_float(lr),
        raw=raw,
        **columns,
    )


def metric_row(run_key: int, name: str, step: int, value: float) -> tuple[Any, ...]:
    """The ``metrics`` row of one logged value (NaN and -0.0 keep their bits in ``raw``)."""
    raw = pack_raw(value) if needs_raw(value) else None
    return row(Metric, run_key=run_key, name=name, step=step, value=sql_float(value), raw=raw)


def read_params(params: list[Value]) -> np.ndarray:
    """A fresh ``(2, n)`` array: every parameter's value, then its gradient."""
    out = np.empty((2, len(params)))
    out[0] = [p.data for p in params]
    out[1] = [p.grad for p in params]
    return out
