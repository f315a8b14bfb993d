"""Recording a replayed step: the trace is the replay's own arrays.

    from gradtrace.engine import jit
    step_loss = jit(loss_fn)                  # loss_fn(X, y) -> the loss Value
    with tracer.record("moons", db="runs.db") as run:
        run.watch(model)
        for k in range(steps):
            loss = step_loss(X, y); model.zero_grad(); loss.backward()
            run.log(loss)                     # every node's value and grad, as ever

A :class:`~gradtrace.engine.Replay` numbers its nodes in the eager engine's
topological order, so node i of a replay is node i of the eager graph: a jit
run stores the very bits an eager run of the same program stores, and the
readers (forensics, diff, verify, the dashboard) cannot tell them apart. No
node is walked: the shape check is one identity comparison (the replay's
capture is the shape's), and the trace is the replay's two float64 arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
from gradtrace.engine import Replay, Value
from gradtrace.tracer.recording.capture import (
    MAX_SHAPES,
    GraphCapture,
    Shape,
    Snapshot,
    first_nonfinite,
)


@dataclass(eq=False)
class JitShape(Shape):
    """A shape made from a jit capture; it matches the replays of that capture."""

    source: Any = None  # the engine's Capture
    passed: tuple[tuple[int, int], ...] = ()  # (node, parameter idx) of Values passed in


def snapshot(graphs: GraphCapture, root: Value | Replay, step: int) -> Snapshot:
    """``graphs.capture(root, step)`` for an eager root, the replay's arrays for a jit one."""
    if not isinstance(root, Replay):
        return graphs.capture(root, step)
    t0 = perf_counter()
    cap = root.capture
    passed = _passed(root, graphs.param_index)
    shape = _find(graphs, cap, passed)
    new = shape is None
    if shape is None:
        shape = _shape(cap, graphs.param_index, passed, step)
        graphs.shapes.append(shape)
        del graphs.shapes[:-MAX_SHAPES]  # the least recently seen go first
    t1 = perf_counter()
    # Read-only arrays no replay writes again (a second backward() makes new ones):
    # the snapshot keeps them as they are, nothing is copied.
    data = root.values
    grad = root.grads if root.grads is not None else _grads_before_backward(root)
    snap = Snapshot(shape, new, data, grad, _first_nonfinite(data, grad))
    graphs.timings.add(t1 - t0, perf_counter() - t1)
    return snap


def _first_nonfinite(data: np.ndarray, grad: np.ndarray) -> int | None:
    # A sum is finite only if every term is (a NaN or inf makes it NaN or inf):
    # one pass in C per array, and the full scan only when a sum is not finite.
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(data.sum()) and math.isfinite(grad.sum()):
            return None
    return first_nonfinite(data, grad)


def _passed(root: Replay, param_index: dict[int, int]) -> tuple[tuple[int, int], ...]:
    get = param_index.get
    return tuple((i, get(id(v), -1)) for i, v in root.passed if i >= 0)


def _find(graphs: GraphCapture, cap: Any, passed: tuple[tuple[int, int], ...]) -> Shape | None:
    for shape in reversed(graphs.shapes):
        if isinstance(shape, JitShape) and shape.source is cap and shape.passed == passed:
            if shape is not graphs.shapes[-1]:
                graphs.shapes.remove(shape)
                graphs.shapes.append(shape)
            return shape
    return None


def _shape(
    cap: Any, param_index: dict[int, int], passed: tuple[tuple[int, int], ...], step: int
) -> JitShape:
    """The shape an eager capture of the same graph would make: same arrays, labels, kinds."""
    get = param_index.get
    param_at = {i: get(id(v), -1) for i, v in zip(cap.state_pos, cap.state, strict=True)}
    param_at.update(passed)
    leaf_params = [param_at.get(i, -1) for i in cap.leaves]
    shape = JitShape(list(cap.ops), list(cap.a), list(cap.b), list(cap.leaves), leaf_params, step)
    shape.labels = list(cap.labels)
    shape.exponents = list(cap.exponents)
    # As an eager capture does: a watched parameter is one whatever the engine says.
    shape.kinds = [""] * len(cap.ops)
    for i, p in zip(cap.leaves, leaf_params, strict=True):
        shape.kinds[i] = "parameter" if p >= 0 else cap.kinds[i]
    shape.source, shape.passed = cap, passed
    return shape


def _grads_before_backward(root: Replay) -> np.ndarray:
    """What an eager graph's ``.grad`` hold before ``backward()``: zero, but for the
    leaves that live outside the call."""
    cap = root.capture
    grad = np.zeros(cap.n_nodes)
    outside = [*zip(cap.state_pos, cap.state, strict=True)]
    outside += [(i, v) for i, v in root.passed if i >= 0]
    if outside:
        grad[[i for i, _ in outside]] = [v.grad for _, v in outside]
    return grad
