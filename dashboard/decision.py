"""The decision boundary of a 2-input engine MLP: its forward pass on a grid of
points, at once, with the engine's own parameters and operation order.

>>> xs, ys, z = decision_grid(spec, values, bounds(X), grid_size(len(values)))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gradtrace.engine import MLP, OP_TABLE


def bounds(X: np.ndarray, margin: float = 0.25) -> tuple[float, float, float, float]:
    """The plot range around 2-D data (x0, x1, y0, y1), padded by ``margin`` of the span."""
    X = np.asarray(X, dtype=np.float64)
    finite = X[np.isfinite(X).all(axis=1)] if X.size else X
    if finite.size == 0 or finite.shape[1] != 2:
        return (-2.0, 2.0, -2.0, 2.0)
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    pad = np.maximum((hi - lo) * margin, 0.5)
    return (
        float(lo[0] - pad[0]),
        float(hi[0] + pad[0]),
        float(lo[1] - pad[1]),
        float(hi[1] + pad[1]),
    )


def grid_size(n_params: int, budget: int = 450_000) -> int:
    """Points per axis of the decision-boundary grid: 36 for the moons MLP (337
    parameters), fewer for bigger models, so evaluating the engine's ``predict`` on
    every point stays within ~40 ms; at most 40.
    """
    return int(max(12, min(40, math.isqrt(max(budget // max(n_params, 1), 1)))))


def decision_grid(
    spec: dict[str, Any],
    values: Sequence[float],
    box: tuple[float, float, float, float],
    n: int = 40,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model of ``spec`` with parameters ``values`` evaluated on an n x n grid
    over ``box``: (xs, ys, z[row=y, col=x]).

    The engine's ``MLP`` loads the parameters (so their order is the engine's own),
    and its ``predict`` runs on every grid point at once: the same operations in the
    same order on float64 arrays, so each score equals ``model.predict([x, y])``
    exactly, a hundred times faster than calling it point by point.
    """
    model = MLP.from_spec(spec)
    model.load_parameters(values)
    xs = np.linspace(box[0], box[1], n)
    ys = np.linspace(box[2], box[3], n)
    gx, gy = np.meshgrid(xs, ys)
    h: list[np.ndarray] = [gx.ravel(), gy.ravel()]
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in model.layers:
            out = []
            for neuron in layer.neurons:
                act = np.full(h[0].shape, neuron.b.data)
                for w, x in zip(neuron.w, h):
                    act = act + w.data * x
                if neuron.activation != "linear":  # the engine's op, bit for bit
                    act = OP_TABLE[neuron.activation].vforward(act, None)
                out.append(act)
            h = out
    return xs, ys, h[0].reshape(n, n)
