"""Applying one op by its code: the table that rebuilds a recorded graph.

    >>> from gradtrace.engine import Value
    >>> x = Value(3.0)
    >>> apply("**", x, arg=2.0).data, apply("*", x, x).data
    (9.0, 9.0)

A recorded graph stores each node's op code and operands; calling the Value
methods below rebuilds it with the engine's own arithmetic (forward values here,
backward rules in :meth:`Value.backward`), so a re-computed node is bit for bit
what training computed. Value's methods are not touched: this is a lookup
beside them, used off the training path.
"""

from __future__ import annotations

from collections.abc import Callable

from gradtrace.engine.value import (
    ADD,
    DIV,
    EXP,
    LOG,
    MUL,
    NEG,
    POW,
    RELU,
    SIGMOID,
    SUB,
    TANH,
    Value,
)

# op code -> how the engine computes that node from its operands.
BINARY: dict[str, Callable[[Value, Value], Value]] = {
    ADD: Value.__add__,
    SUB: Value.__sub__,
    MUL: Value.__mul__,
    DIV: Value.__truediv__,
}
UNARY: dict[str, Callable[[Value], Value]] = {
    NEG: Value.__neg__,
    RELU: Value.relu,
    TANH: Value.tanh,
    EXP: Value.exp,
    LOG: Value.log,
    SIGMOID: Value.sigmoid,
}


def apply(op: str, a: Value, b: Value | None = None, arg: float | None = None) -> Value:
    """The node ``op`` makes of ``a`` (and ``b``, or the exponent ``arg`` for ``**``)."""
    if op == POW:
        if arg is None:
            raise ValueError("a ** node needs its exponent: apply('**', a, arg=k)")
        return a**arg
    if op in BINARY:
        if b is None:
            raise ValueError(f"op {op!r} takes two operands")
        return BINARY[op](a, b)
    if op in UNARY:
        return UNARY[op](a)
    raise ValueError(f"unknown op {op!r}; the engine's ops are {sorted(BINARY) + sorted(UNARY)}")
