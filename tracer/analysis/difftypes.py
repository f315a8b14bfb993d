"""What :mod:`gradtrace.tracer.analysis.diff` answers, and how two arrays are compared.

    >>> first_unequal(np.array([1.0, 2.0]), np.array([1.0, 2.5]))    # doctest: +SKIP
    1

Kept apart from the search itself so that the reads behind it
(:mod:`gradtrace.tracer.analysis.diffread`) can use the same types without importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Which way is better, by metric name; any other metric: lower is better.
HIGHER_IS_BETTER = {"acc", "accuracy", "f1", "precision", "recall", "auc"}
# Settings compared besides the config keys: (label, key in the runs row).
SETTINGS = [
    ("seed", "seed"),
    ("model", "model"),
    ("optimizer", "optimizer"),
    ("capture", "capture"),
    ("status", None),
    ("experiment", "experiment"),
    ("gradtrace version", "version"),
]


@dataclass(frozen=True)
class Setting:
    """One setting of both runs; ``same`` when they agree."""

    key: str
    a: Any
    b: Any

    @property
    def same(self) -> bool:
        return self.a == self.b


@dataclass(frozen=True)
class ShapeDiff:
    """The first graph shape that differs (``index`` counts shapes by first step) and
    the first node where it does: its op and parents in each run (None: no such node)."""

    index: int
    first_step_a: int | None
    first_step_b: int | None
    node: int | None
    op_a: str | None
    op_b: str | None
    parents_a: tuple[int, ...] | None
    parents_b: tuple[int, ...] | None


@dataclass(frozen=True)
class ParamDiff:
    """The first parameter (by index) whose value differs at ``step``."""

    step: int
    param: int
    name: str
    a: float
    b: float


@dataclass(frozen=True)
class UpdateDiff:
    """The update (of ``step``) that made the parameters part: lr and first result."""

    step: int
    lr_a: float
    lr_b: float
    param: int | None
    name: str | None
    after_a: float | None
    after_b: float | None


@dataclass(frozen=True)
class NodeDiff:
    """The first node in topological order whose value (or gradient) differs."""

    step: int
    node: int
    op: str
    label: str
    param: str | None  # the parameter's name, for a parameter leaf
    a: float
    b: float

    def name(self, text: Callable[[str], str] = str) -> str:
        """The node as ``gradtrace diff`` names it, each user text through ``text``
        (the terminal's escaper, or none where the page escapes):

            >>> print(NodeDiff(3, 0, "", "", "layers.0.w.1", 0.5, 0.25).name())
            node 0 (op 'leaf', parameter layers.0.w.1)
        """
        what = f"node {self.node} (op {self.op or 'leaf'!r}"
        if self.label:
            what += f", label {text(self.label)!r}"
        if self.param:
            what += f", parameter {text(self.param)}"
        return what + ")"


@dataclass(frozen=True)
class MetricSide:
    """One metric of both runs: final value, best value and its step, first difference."""

    name: str
    final_a: float | None
    final_b: float | None
    best_a: float | None
    best_step_a: int | None
    best_b: float | None
    best_step_b: int | None
    first_diff_step: int | None


@dataclass
class RunDiff:
    """The answer of :func:`diff_runs`; ``identical`` when nothing computed differs."""

    a_id: str
    b_id: str
    a_name: str
    b_name: str
    settings: list[Setting]
    same_parameters: bool
    parameter_names: tuple[list[str], list[str]]
    same_shapes: bool
    shape: ShapeDiff | None
    common_steps: int
    last_common_step: int | None
    steps_a: int
    steps_b: int
    first_param_step: int | None = None
    param: ParamDiff | None = None
    update: UpdateDiff | None = None
    first_trace_step: int | None = None
    node_value: NodeDiff | None = None
    node_grad: NodeDiff | None = None
    metrics: list[MetricSide] = field(default_factory=list)
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def differences(self) -> list[Setting]:
        """The settings whose values differ."""
        return [s for s in self.settings if not s.same]

    @property
    def identical(self) -> bool:
        """Same shapes and parameters, and no parameter, node or metric differs on the
        steps both runs logged (settings such as the status may still differ)."""
        return (
            self.same_shapes
            and self.same_parameters
            and self.first_param_step is None
            and self.first_trace_step is None
            and all(m.first_diff_step is None for m in self.metrics)
        )


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise bit equality of two float64 arrays, where any NaN equals any NaN.

        >>> same_bits(np.array([0.0, np.nan, 1.5]), np.array([-0.0, -np.nan, 1.5]))
        array([False,  True,  True])

    A NaN's payload and sign are not the program's: CPython's ``NaN + NaN`` keeps
    one operand's payload or the other's depending on whether the bytecode has been
    specialised yet, so one program run twice in one process can make two NaNs of
    different bits. -0.0 and 0.0 stay different (``1/x`` tells them apart). The one
    rule diff and verify compare by.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    return (a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))


def equal_mask(a: np.ndarray, b: np.ndarray, rtol: float = 0.0, atol: float = 0.0) -> np.ndarray:
    """Elementwise: :func:`same_bits` (NaN equals NaN, -0.0 is not 0.0), or within
    tolerance."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    same = same_bits(a, b)
    if rtol or atol:
        with np.errstate(invalid="ignore", over="ignore"):
            same |= np.abs(a - b) <= atol + rtol * np.abs(b)
    return same


def first_unequal(a: np.ndarray, b: np.ndarray, rtol: float = 0.0, atol: float = 0.0) -> int | None:
    """Index of the first element that differs (see :func:`equal_mask`), or None."""
    n = min(len(a), len(b))
    bad = np.flatnonzero(~equal_mask(a[:n], b[:n], rtol, atol))
    if bad.size:
        return int(bad[0])
    return None if len(a) == len(b) else n
