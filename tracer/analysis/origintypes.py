"""What forensics answers with, and what it reads: the origin of a run's first
NaN/inf (:class:`Origin`) and one step's recorded arrays (:class:`StepData`).

    >>> Origin(step=3, kind="metric", node=None, op=None, name="loss", value=float("inf"),
    ...        grad=None, parents=(), exact=True, story="step 3: loss is inf").kind
    'metric'

The definition of an origin is in ``tracer/analysis/forensics.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gradtrace.tracer.recording.capture import Snapshot


@dataclass(frozen=True)
class ParentValue:
    """An operand of the origin node: its index, op, name, value, (backward origins)
    the gradient the origin's rule sent to it, and its parameter index if it is one."""

    node: int
    op: str
    name: str | None
    value: float
    sent: float | None = None
    param: int | None = None


@dataclass(frozen=True)
class Origin:
    """Where a run's first NaN/inf came from (see the module docstring).

    ``step``: the step. ``kind``: forward | backward | update | metric.
    ``node``: the node index (None without a node: update, metric, untraced step).
    ``op``: the node's op as written, ``**`` with its exponent (``"**2"``), ``""`` for
    a leaf; None without a node. ``name``: the parameter name, else the node's
    label, else the metric's name (None if it has none). ``value``: the node's
    value (forward, backward), the parameter's value after the update (update),
    the metric's value (metric). ``grad``: the node's or parameter's gradient
    (None for a metric). ``parents``: the node's operands and their values.
    ``exact``: False when the step has no node trace. ``story``: all that, in words.
    ``param``: the parameter index if a parameter is involved; ``before`` and ``lr``:
    the value before the update and its learning rate (update origins).
    """

    step: int
    kind: str
    node: int | None
    op: str | None
    name: str | None
    value: float
    grad: float | None
    parents: tuple[ParentValue, ...]
    exact: bool
    story: str
    param: int | None = None
    before: float | None = None
    lr: float | None = None


@dataclass(frozen=True)
class NodeTrace:
    """One step's graph with its values and gradients, as arrays in topological
    order: ``a``/``b`` operand indices (-1: none), ``args`` the exponent of ``**``
    nodes (NaN elsewhere), ``params`` the parameter index of leaves (-1: none)."""

    ops: np.ndarray
    a: np.ndarray
    b: np.ndarray
    args: np.ndarray
    labels: Sequence[str]
    params: np.ndarray
    values: np.ndarray
    grads: np.ndarray

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> NodeTrace:
        s = snap.shape
        return cls(
            ops=np.asarray(s.ops, dtype=str),
            a=np.asarray(s.a, dtype=np.int64),
            b=np.asarray(s.b, dtype=np.int64),
            args=np.array([np.nan if x is None else x for x in s.exponents], dtype=np.float64),
            labels=s.labels,
            params=np.asarray(s.node_params(), dtype=np.int64),
            values=np.frombuffer(snap.data, dtype="<f8").astype(np.float64),
            grads=np.frombuffer(snap.grad, dtype="<f8").astype(np.float64),
        )


@dataclass
class StepData:
    """What one step recorded, from the database or from the recorder's memory.

    ``param_after`` is the parameters' values after the step's update (None while
    not known); ``metrics`` maps names to values."""

    step: int
    names: Sequence[str] = ()
    nodes: NodeTrace | None = None
    param_data: np.ndarray | None = None
    param_grad: np.ndarray | None = None
    param_after: np.ndarray | None = None
    lr: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
