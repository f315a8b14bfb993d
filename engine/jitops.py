"""Every op over arrays of nodes, for the replay: the op table's vectorised forms.

    >>> import numpy as np
    >>> FORWARD["*"](np.array([2.0, 3.0]), np.array([4.0, 0.5]), None)
    array([8. , 1.5])

The op table (:mod:`gradtrace.engine.ops`) holds each op's forward and chain
rule over numpy arrays, bit for bit the scalar engine's: ``+ - * /``, ``neg``
and ``relu`` are single IEEE operations, and ``tanh``, ``exp``, ``log``,
``**`` and ``sigmoid`` map the engine's own scalar functions over the
elements (numpy's SIMD versions differ from ``math``'s in the last bit for a
share of inputs). This module adapts the table to the replay's calling
convention and to one rule of accumulation:

* A backward entry returns *contributions*: the number the eager engine adds
  to an operand's ``.grad`` (``b.grad -= c`` is ``b.grad + (-c)`` exactly in
  IEEE arithmetic, and the table already returns ``-c`` for it).
* Where the eager rule adds nothing (``relu`` at or below zero, ``x**0``:
  :func:`gradtrace.engine.rules.chain` skips the ``+=``), the table says 0.0;
  adding +0.0 would turn a -0.0 gradient into +0.0, so the replay contributes
  -0.0, the one number whose addition changes no float.

Arrays in, arrays out; the caller silences numpy's float warnings (a NaN is a
value here, not an error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gradtrace.engine.ops import OP_TABLE, POW, RELU

Array = np.ndarray
NOTHING = -0.0  # the contribution of a rule that adds nothing: x + -0.0 == x for every x

# Where the eager rule adds to the operand at all, from the node's value v and exponent k.
_ADDS: dict[str, Callable[[Array, Array], Array]] = {
    RELU: lambda v, k: v > 0.0,
    POW: lambda v, k: k != 0.0,
}


def _forward(row: Any) -> Callable[[Array, Array | None, Array | None], Array]:
    if row.code == POW:  # the exponent is the op's second argument
        return lambda a, b, k: row.vforward(a, k)
    return lambda a, b, k: row.vforward(a, b)


def _backward(row: Any) -> Callable[..., tuple[Array, Array | None]]:
    adds = _ADDS.get(row.code)
    pow_ = row.code == POW

    def contributions(g: Array, a: Array, b: Array | None, v: Array, k: Array | None):
        out = row.vbackward(a, k if pow_ else b, v, g)
        ca = out[0] if adds is None else np.where(adds(v, k), out[0], NOTHING)
        return ca, (out[1] if len(out) > 1 else None)

    return contributions


# op code -> f(a, b, k): the values of the nodes, from their operands' values
# (b is None for a unary op; k is the exponent of each ** node).
FORWARD: dict[str, Callable[[Array, Array | None, Array | None], Array]] = {
    code: _forward(row) for code, row in OP_TABLE.items()
}

# op code -> f(g, a, b, v, k): what the node adds to its operands' gradients,
# (to a, to b), from its gradient g, its operands' values a, b and its value v.
BACKWARD: dict[str, Callable[..., tuple[Array, Array | None]]] = {
    code: _backward(row) for code, row in OP_TABLE.items()
}
