"""Every op: its code, how the lecture spells it, how many operands, its chain rule.

    >>> from gradtrace.engine import Value
    >>> x = Value(3.0); y = x**2; y.grad = 1.0
    >>> chain([y]); x.grad
    6.0

A node stores its op as one of the short codes below (leaves have the empty
op). Every node holds these very string objects, so ops compare by identity
(``op is MUL``), the cheapest test there is. The gradient rules sit in
:func:`chain`, the one place they are written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gradtrace.engine.ieee import div as _div
from gradtrace.engine.ieee import pow as _pow

if TYPE_CHECKING:  # only for annotations: value.py imports this module
    from gradtrace.engine.value import Value

LEAF, ADD, SUB, MUL, DIV, POW, NEG = "", "+", "-", "*", "/", "**", "neg"
RELU, TANH, EXP, LOG, SIGMOID = "relu", "tanh", "exp", "log", "sigmoid"

# What a leaf stands for (Value.kind); a computed node's kind is "".
INPUT, CONSTANT, TARGET, PARAMETER = "input", "constant", "target", "parameter"
LEAF_KINDS: tuple[str, ...] = (INPUT, CONSTANT, TARGET, PARAMETER)

OPS: tuple[str, ...] = (LEAF, ADD, SUB, MUL, DIV, POW, NEG, RELU, TANH, EXP, LOG, SIGMOID)

ARITY = {op: 2 if op in (ADD, SUB, MUL, DIV) else 1 for op in OPS if op}

# The lecture's spellings where they differ from ours: micrograd prints relu as
# "ReLU" and a power with its exponent ("**2"); lecture_name handles the power.
_LECTURE_NAME = {RELU: "ReLU"}
_FROM_LECTURE = {**{op: op for op in OPS if op and op is not POW}, "ReLU": RELU}


def lecture_name(op: str, exponent: float | None = None) -> str:
    """``op`` as micrograd prints it: ``lecture_name("**", 2.0) == "**2"``."""
    if op is POW and exponent is not None:
        k = exponent
        return f"**{int(k)}" if k.is_integer() and abs(k) < 2**53 else f"**{k!r}"
    return _LECTURE_NAME.get(op, op)


def from_lecture(op: str) -> tuple[str, float | None]:
    """The op code and exponent for a lecture spelling: ``from_lecture("**2") == ("**", 2.0)``."""
    if not isinstance(op, str):
        raise TypeError(f"_op must be a str, got {type(op).__name__}")
    if op in _FROM_LECTURE:
        return _FROM_LECTURE[op], None
    if op.startswith(POW):
        try:
            return POW, float(op[2:])
        except ValueError:
            pass
    known = ", ".join(map(repr, _FROM_LECTURE))
    raise ValueError(
        f"_op must be one of {known} or '**<number>', got {op!r}; gradtrace keeps "
        "no per-node closures, so it can only differentiate its own ops"
    )


def chain(nodes: Iterable[Value]) -> None:
    """Apply each node's chain rule, in the given order: every op's gradient, once.

    ``Value.backward()`` runs it over the whole graph in reverse topological
    order, ``Value._backward()`` over one node.
    An if-chain, most frequent ops first, rather than a dict of rule functions:
    a Python call per node would make backward measurably slower.
    """
    for v in nodes:
        op = v.op
        if op is LEAF:
            continue
        g = v.grad
        if op is MUL:
            a, b = v._a, v._b
            a.grad += b.data * g
            b.grad += a.data * g
        elif op is ADD:
            a, b = v._a, v._b
            a.grad += g
            b.grad += g
        elif op is RELU:
            if v.data > 0.0:
                v._a.grad += g
        elif op is TANH:
            t = v.data
            v._a.grad += (1.0 - t * t) * g
        elif op is SUB:
            a, b = v._a, v._b
            a.grad += g
            b.grad -= g
        elif op is NEG:
            v._a.grad -= g
        elif op is POW:
            k = v._arg
            if k:  # d(x**0)/dx is 0, not 0 * x**-1 (NaN at x = 0)
                a = v._a
                a.grad += k * _pow(a.data, k - 1.0) * g
        elif op is DIV:
            a, b = v._a, v._b
            a.grad += _div(g, b.data)  # d(a/b)/da = 1/b
            b.grad -= _div(g * v.data, b.data)  # d(a/b)/db = -a/b**2
        elif op is EXP:
            v._a.grad += v.data * g
        elif op is LOG:
            a = v._a
            a.grad += _div(g, a.data)
        elif op is SIGMOID:
            s = v.data
            v._a.grad += s * (1.0 - s) * g
        else:  # pragma: no cover - every op above has a rule
            raise RuntimeError(f"no backward rule for op {op!r}")
