"""Small data sets, made without scikit-learn.

    >>> X, y = make_moons(100, noise=0.1, seed=1)
    >>> len(X), sorted(set(y))
    (100, [-1, 1])

Labels are -1/+1, ready for the hinge loss (micrograd's demo converts
scikit-learn's 0/1 the same way); pass ``signed=False`` for 0/1.
"""

from __future__ import annotations

import math
import random

Dataset = tuple[list[list[float]], list[int]]


def _labels(y: list[int], signed: bool) -> list[int]:
    return [2 * t - 1 for t in y] if signed else y


def _shuffled(X: list[list[float]], y: list[int], rng: random.Random) -> Dataset:
    order = list(range(len(X)))
    rng.shuffle(order)
    return [X[i] for i in order], [y[i] for i in order]


def _linspace(a: float, b: float, n: int) -> list[float]:
    if n == 1:
        return [a]
    return [a + (b - a) * i / (n - 1) for i in range(n)]


def make_moons(
    n: int = 100, noise: float = 0.1, seed: int | None = None, signed: bool = True
) -> Dataset:
    """Two interleaving half circles, as ``sklearn.datasets.make_moons`` draws them."""
    if n < 2:
        raise ValueError(f"make_moons needs n >= 2, got {n}")
    rng = random.Random(seed)
    n_out = n // 2
    n_in = n - n_out
    X = [[math.cos(t), math.sin(t)] for t in _linspace(0.0, math.pi, n_out)]
    X += [[1.0 - math.cos(t), 0.5 - math.sin(t)] for t in _linspace(0.0, math.pi, n_in)]
    y = [0] * n_out + [1] * n_in
    X, y = _shuffled(X, y, rng)
    X = [[a + rng.gauss(0.0, noise), b + rng.gauss(0.0, noise)] for a, b in X]
    return X, _labels(y, signed)


def make_circles(
    n: int = 100,
    noise: float = 0.05,
    factor: float = 0.5,
    seed: int | None = None,
    signed: bool = True,
) -> Dataset:
    """A small circle inside a large one; ``factor`` is the ratio of their radii."""
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be between 0 and 1, got {factor}")
    if n < 2:
        raise ValueError(f"make_circles needs n >= 2, got {n}")
    rng = random.Random(seed)
    n_out = n // 2
    n_in = n - n_out
    angles_out = [2 * math.pi * i / n_out for i in range(n_out)]
    angles_in = [2 * math.pi * i / n_in for i in range(n_in)]
    X = [[math.cos(t), math.sin(t)] for t in angles_out]
    X += [[factor * math.cos(t), factor * math.sin(t)] for t in angles_in]
    y = [0] * n_out + [1] * n_in
    X, y = _shuffled(X, y, rng)
    X = [[a + rng.gauss(0.0, noise), b + rng.gauss(0.0, noise)] for a, b in X]
    return X, _labels(y, signed)


def toy() -> tuple[list[list[float]], list[float]]:
    """The lecture's four samples of three features, targets +-1."""
    X = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    y = [1.0, -1.0, -1.0, 1.0]
    return X, y
