"""Every op over arrays of nodes: the replay's forward values and chain rule, per op code.

    >>> import numpy as np
    >>> FORWARD["*"](np.array([2.0, 3.0]), np.array([4.0, 0.5]), None)
    array([8. , 1.5])

One entry per op, its forward and its backward side by side, the same formulas
as :func:`gradtrace.engine.rules.chain` written over arrays. Two rules keep a
replay bit for bit equal to the eager engine:

* ``+ - * /``, ``neg`` and ``relu`` are single IEEE operations, so numpy gives
  the very bits Python does. ``tanh``, ``exp``, ``log``, ``**`` and ``sigmoid``
  are not: numpy's SIMD versions differ from ``math``'s in the last bit for a
  share of inputs, so they map the engine's own scalar functions
  (``engine/ieee.py``, ``math.tanh``) over the elements, one Python call each.
* A backward entry returns *contributions*: the number the eager engine adds
  to an operand's ``.grad``. ``b.grad -= c`` is ``b.grad + (-c)`` exactly in
  IEEE arithmetic, so it becomes the contribution ``-c``; a rule that adds
  nothing (``relu`` at or below zero, ``x**0``) contributes ``-0.0``, the one
  number whose addition changes no float, not even ``-0.0``.

Arrays in, arrays out; the caller silences numpy's float warnings (a NaN is a
value here, not an error).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from gradtrace.engine.ieee import exp as _exp
from gradtrace.engine.ieee import log as _log
from gradtrace.engine.ieee import pow as _pow
from gradtrace.engine.ieee import sigmoid as _sigmoid
from gradtrace.engine.rules import ADD, DIV, EXP, LOG, MUL, NEG, POW, RELU, SIGMOID, SUB, TANH

Array = np.ndarray
NOTHING = -0.0  # the contribution of a rule that adds nothing: x + -0.0 == x for every x


def scalar(f: Callable[[float], float], x: Array) -> Array:
    """``f`` of every element, as the eager engine computes it (one Python call each)."""
    return np.fromiter(map(f, x.tolist()), np.float64, len(x))


def _powers(x: Array, k: Array) -> Array:
    return np.fromiter(map(_pow, x.tolist(), k.tolist()), np.float64, len(x))


# op code -> f(a, b, k): the values of the nodes, from their operands' values
# (b is None for a unary op; k is the exponent of each ** node, else None).
FORWARD: dict[str, Callable[[Array, Array | None, Array | None], Array]] = {
    ADD: lambda a, b, k: a + b,
    SUB: lambda a, b, k: a - b,
    MUL: lambda a, b, k: a * b,
    DIV: lambda a, b, k: a / b,  # IEEE: x/0 is ±inf, 0/0 NaN, as ieee.div
    NEG: lambda a, b, k: -a,
    RELU: lambda a, b, k: np.where(a <= 0.0, 0.0, a),  # NaN passes through
    TANH: lambda a, b, k: scalar(math.tanh, a),
    EXP: lambda a, b, k: scalar(_exp, a),
    LOG: lambda a, b, k: scalar(_log, a),
    SIGMOID: lambda a, b, k: scalar(_sigmoid, a),
    POW: lambda a, b, k: _powers(a, k),
}


def _pow_back(g: Array, a: Array, v: Array, k: Array) -> Array:
    # d(x**0)/dx adds nothing in the eager rule (not 0 * x**-1, NaN at 0).
    return np.where(k != 0.0, (k * _powers(a, k - 1.0)) * g, NOTHING)


# op code -> f(g, a, b, v, k): what the node adds to its operands' gradients,
# (to a, to b), from its gradient g, its operands' values a, b and its value v.
BACKWARD: dict[str, Callable[..., tuple[Array, Array | None]]] = {
    ADD: lambda g, a, b, v, k: (g, g),
    SUB: lambda g, a, b, v, k: (g, -g),
    MUL: lambda g, a, b, v, k: (b * g, a * g),
    DIV: lambda g, a, b, v, k: (g / b, -((g * v) / b)),  # 1/b and -a/b**2
    NEG: lambda g, a, b, v, k: (-g, None),
    RELU: lambda g, a, b, v, k: (np.where(v > 0.0, g, NOTHING), None),
    TANH: lambda g, a, b, v, k: ((1.0 - v * v) * g, None),
    EXP: lambda g, a, b, v, k: (v * g, None),
    LOG: lambda g, a, b, v, k: (g / a, None),
    SIGMOID: lambda g, a, b, v, k: ((v * (1.0 - v)) * g, None),
    POW: lambda g, a, b, v, k: (_pow_back(g, a, v, k), None),
}
