"""Turning a step's graph and parameters into arrays, without touching the database.

    >>> from gradtrace.engine import MLP, Value
    >>> model = MLP(2, [2, 1], seed=0)
    >>> cap = GraphCapture({id(p): i for i, p in enumerate(model.parameters())})
    >>> loss = model([Value(1.0), Value(2.0)]); loss.backward()
    >>> snap = cap.capture(loss)
    >>> snap.shape.n_nodes == len(loss.topo()), snap.new_shape
    (True, True)

The same program gives the same shape every step, so a shape is compared, not
rebuilt: the op list and parent arrays are compared in C against the shapes
already seen, and only a new shape is stored (once) with its labels.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np
from gradtrace.engine import Value, structure

_get_label = attrgetter("label")
_get_exponent = attrgetter("exponent")
_BIG_ENDIAN = sys.byteorder == "big"


def int32_bytes(values: list[int]) -> bytes:
    """Little-endian int32 bytes (node indices)."""
    return np.asarray(values, dtype="<i4").tobytes()


def float_bytes(values: array) -> bytes:
    """``values`` as little-endian float64 bytes, the on-disk format of traces."""
    if _BIG_ENDIAN:
        values = array("d", values)
        values.byteswap()
    return values.tobytes()


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
    key: int | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    def same(self, ops: list[str], a: list[int], b: list[int], leaf_params: list[int]) -> bool:
        return self.a == a and self.b == b and self.ops == ops and self.leaf_params == leaf_params

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256()
        h.update("\x00".join(self.ops).encode())
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
        """The column-wise form stored in ``graphs`` (see ``tracer.models.Graph``)."""
        return {
            "ops": " ".join(op or "." for op in self.ops),
            "a": int32_bytes(self.a),
            "b": int32_bytes(self.b),
            "params": int32_bytes(self.node_params()),
            "labels": {str(i): s for i, s in enumerate(self.labels) if s},
            "args": {str(i): _json_float(x) for i, x in enumerate(self.exponents) if x is not None},
        }


def _json_float(x: float) -> float | str:
    """JSON has no NaN/inf (PostgreSQL's json type rejects them): those become strings,
    "nan", "inf", "-inf", which ``float()`` and numpy read back."""
    return x if math.isfinite(x) else repr(float(x))


@dataclass(eq=False)
class Snapshot:
    """One step's node trace: its shape and every node's value and gradient."""

    shape: Shape
    new_shape: bool
    data: bytes
    grad: bytes
    first_nonfinite: int | None


class GraphCapture:
    """Remembers the shapes of one run and snapshots a step's graph against them."""

    def __init__(self, param_index: dict[int, int]):
        self.param_index = param_index  # id(parameter Value) -> parameter idx
        self.shapes: list[Shape] = []

    def capture(self, root: Value, step: int = 0) -> Snapshot:
        nodes, ops, a, b = structure(root)
        leaves = _positions(ops, "")
        get = self.param_index.get
        leaf_params = [get(id(nodes[i]), -1) for i in leaves]
        shape = self._find(ops, a, b, leaf_params)
        new = shape is None
        if shape is None:
            shape = Shape(ops, a, b, leaves, leaf_params, step)
            shape.labels = list(map(_get_label, nodes))
            shape.exponents = list(map(_get_exponent, nodes))
            self.shapes.append(shape)
        data = array("d", [v.data for v in nodes])
        grad = array("d", [v.grad for v in nodes])
        return Snapshot(
            shape, new, float_bytes(data), float_bytes(grad), first_nonfinite(data, grad)
        )

    def _find(
        self, ops: list[str], a: list[int], b: list[int], leaf_params: list[int]
    ) -> Shape | None:
        # Newest first: a run's graph rarely changes, and when it does (a smaller
        # last batch) it usually changes back.
        for shape in reversed(self.shapes):
            if shape.same(ops, a, b, leaf_params):
                if shape is not self.shapes[-1]:
                    self.shapes.remove(shape)
                    self.shapes.append(shape)
                return shape
        return None


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


def first_nonfinite(data: array, grad: array) -> int | None:
    """Index of the first node whose value or gradient is NaN or infinite."""
    d = np.frombuffer(data, dtype=np.float64)
    g = np.frombuffer(grad, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(d) & np.isfinite(g)))
    return int(bad[0]) if bad.size else None


_PACK4 = struct.Struct("<4d")
_PACK1 = struct.Struct("<d")


def needs_raw(x: float) -> bool:
    """NaN and -0.0 are the floats SQL columns cannot hold exactly."""
    return x != x or (x == 0.0 and math.copysign(1.0, x) < 0)


def update_rows(
    run_key: int, step: int, before: array, grad: array, after: array, lr: float | None
) -> list[tuple[Any, ...]]:
    """Rows for ``updates``: one per parameter, NaN as NULL plus exact bits in ``raw``."""
    b = np.frombuffer(before, dtype=np.float64)
    g = np.frombuffer(grad, dtype=np.float64)
    f = np.frombuffer(after, dtype=np.float64)
    n = len(b)
    rows = list(zip([run_key] * n, range(n), [step] * n, before, grad, after, [lr] * n, [None] * n))
    stack = np.stack([b, g, f])
    special = np.isnan(stack) | ((stack == 0.0) & np.signbit(stack))
    lr_special = lr is not None and needs_raw(lr)
    odd = range(n) if lr_special else np.flatnonzero(special.any(axis=0)).tolist()
    lr_sql = None if lr is None or lr != lr else lr
    for i in odd:
        bi, gi, fi = before[i], grad[i], after[i]
        raw = _PACK4.pack(bi, gi, fi, math.nan if lr is None else lr)
        rows[i] = (run_key, i, step, _sql(bi), _sql(gi), _sql(fi), lr_sql, raw)
    return rows


def _sql(x: float) -> float | None:
    return None if x != x else x


def metric_row(run_key: int, name: str, step: int, value: float) -> tuple[Any, ...]:
    if needs_raw(value):
        return (run_key, name, step, _sql(value), _PACK1.pack(value))
    return (run_key, name, step, value, None)
