"""Loss functions over lists of :class:`Value` predictions.

>>> from gradtrace.engine import Value
>>> mse([Value(0.5), Value(-1.0)], [1.0, -1.0]).data
0.125
"""

from __future__ import annotations

from collections.abc import Sequence

from gradtrace.engine.ops import TARGET
from gradtrace.engine.value import Number, Value


def _target(t: Value | Number) -> Value:
    """A target as a leaf marked ``kind="target"`` (a Value passed in stays as it is).

    Built where a plain number would have been lifted anyway, so the graph keeps
    the shape and values micrograd gives it; only the leaf's kind is added.
    """
    return t if type(t) is Value else Value(t, kind=TARGET)


def _check(preds: Sequence, targets: Sequence) -> None:
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions but {len(targets)} targets")
    if not preds:
        raise ValueError("a loss needs at least one prediction")


def mse(preds: Sequence[Value], targets: Sequence[Number]) -> Value:
    """Mean squared error: ``sum((p - t)**2) / n``."""
    _check(preds, targets)
    return sum((p - _target(t)) ** 2 for p, t in zip(preds, targets)) * (1.0 / len(preds))


def hinge(scores: Sequence[Value], targets: Sequence[Number]) -> Value:
    """The SVM max-margin loss of micrograd's moons demo: ``mean(relu(1 - y * s))``.

    Targets are -1 or +1. Written as ``1 + -y*s`` to build micrograd's exact graph,
    where the target leaf holds ``-y`` (``s * -y``, as Python evaluates ``-y * s``).
    """
    _check(scores, targets)
    losses = [(1 + s * _target(-y)).relu() for y, s in zip(targets, scores)]
    return sum(losses) * (1.0 / len(losses))


def binary_cross_entropy(probs: Sequence[Value], targets: Sequence[Number]) -> Value:
    """``mean(-t log p - (1 - t) log(1 - p))`` for probabilities ``p`` and targets in {0, 1}."""
    _check(probs, targets)
    # p.log() * t is the graph t * p.log() builds; 1 - t stays a plain-number constant.
    terms = [-(p.log() * _target(t) + (1 - t) * (1 - p).log()) for p, t in zip(probs, targets)]
    return sum(terms) * (1.0 / len(terms))


def cross_entropy(logits: Sequence[Value], target: int) -> Value:
    """Softmax negative log-likelihood of class ``target``: ``log(sum(exp(l))) - l[target]``.

        >>> round(cross_entropy([Value(2.0), Value(0.0), Value(0.0)], 0).data, 6)
        0.239545

    The logits of one sample (a 3-class classifier's three outputs). The largest
    logit's value is subtracted first, as a constant, so a large logit gives a
    finite loss instead of ``exp`` overflowing; the gradient is the same,
    ``softmax(l) - onehot(target)``.
    """
    if not logits:
        raise ValueError("cross_entropy needs at least one logit")
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < len(logits):
        raise ValueError(
            f"target must be a class index from 0 to {len(logits) - 1}, got {target!r}"
        )
    shift = max(v.data for v in logits)
    total = sum((v - shift).exp() for v in logits)
    return total.log() - (logits[target] - shift)


def l2(params: Sequence[Value], alpha: float = 1e-4) -> Value:
    """L2 regularisation ``alpha * sum(p*p)``, as in micrograd's demo."""
    return alpha * sum(p * p for p in params)


def accuracy(scores: Sequence[Value | float], targets: Sequence[Number]) -> float:
    """Fraction of scores on the right side of zero for targets in {-1, +1}."""
    _check(scores, targets)
    data = [s.data if isinstance(s, Value) else s for s in scores]
    return sum((y > 0) == (s > 0) for y, s in zip(targets, data)) / len(data)
