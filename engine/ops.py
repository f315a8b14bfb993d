"""Every op the engine knows, each defined once: the op table.

    >>> from gradtrace.engine import Value
    >>> OP_TABLE["tanh"].lecture, OP_TABLE["*"].arity, from_lecture("**-1")
    ('tanh', 2, ('**', -1.0))
    >>> Mul.backward(2.0, 3.0, 6.0, 1.0)       # what x*y sends x and y: y*g, x*g
    (3.0, 2.0)
    >>> apply("**", Value(3.0), arg=2.0).data
    9.0

An op is a class used as a namespace (never instantiated) that holds:

* ``code``: what a node stores (``Value.op``); ``lecture``: how micrograd's
  ``_op`` prints it; ``spellings``: every foreign ``_op`` string that means it;
* ``arity``: its operands (the exponent of ``**`` is a constant, not an operand);
* ``method``: the :class:`Value` method that makes the node (:func:`apply`);
* ``forward(x, y)``: the node's value from its operands' values, ``y`` being the
  second operand or the exponent of ``**`` (unary ops ignore it);
* ``backward(x, y, out, g)``: what the node's chain rule sends to each operand,
  given its value ``out`` and gradient ``g``: the local derivative times ``g``;
* ``vforward``/``vbackward``: the same over numpy arrays, bit for bit. numpy's
  own tanh/exp/log/power differ from ``math``'s in the last bit for some inputs,
  so those map the scalar function over the array (:func:`each`): this form
  serves the analyses (forensics, verify), where exactness beats speed. ``+ - *
  /``, negation and comparisons are IEEE 754 operations and vectorise as is.

The training path does not look anything up here: Value's methods compute the
forward values inline and :func:`gradtrace.engine.rules.chain` runs the backward
rules as an if-chain (a Python call per node would slow backward down).
``tests/engine/test_op_table.py`` holds both to this table, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gradtrace.engine import ieee

LEAF, ADD, SUB, MUL, DIV, POW, NEG = "", "+", "-", "*", "/", "**", "neg"
RELU, TANH, EXP, LOG, SIGMOID = "relu", "tanh", "exp", "log", "sigmoid"

# What a leaf stands for (Value.kind); a computed node's kind is "".
INPUT, CONSTANT, TARGET, PARAMETER = "input", "constant", "target", "parameter"
LEAF_KINDS: tuple[str, ...] = (INPUT, CONSTANT, TARGET, PARAMETER)


class _Numpy:
    """numpy, imported on first use: the engine imports without it (jit aside),
    and only the vectorised forms below call it."""

    def __getattr__(self, name: str) -> Any:
        import numpy

        return getattr(numpy, name)


np: Any = _Numpy()


def each(f: Callable[..., float], *arrays: Any) -> Any:
    """``f`` applied to every element of the (broadcast) arrays, one Python call each.

    >>> each(math.tanh, [0.0, 1.0]).tolist() == [0.0, math.tanh(1.0)]
    True
    """
    cols = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    out = np.fromiter(map(f, *(c.ravel().tolist() for c in cols)), np.float64, cols[0].size)
    return out.reshape(cols[0].shape)


class Op:
    """The fields every op fills in (see the module docstring); None: not written."""

    code: str = LEAF
    lecture: str = ""
    spellings: tuple[str, ...] = ()
    arity: int = 1
    method: str = ""
    forward: Callable[..., Any] | None = None
    backward: Callable[..., tuple[Any, ...]] | None = None
    vforward: Callable[..., Any] | None = None
    vbackward: Callable[..., tuple[Any, ...]] | None = None
    # A unary op given as its scalar function: forward is that function and
    # vforward maps it over the array (see the module docstring).
    scalar: Callable[[float], float] | None = None

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        f = cls.__dict__.get("scalar")
        if f is not None:
            cls.forward = lambda x, y=None: f(x)
            cls.vforward = lambda x, y=None: each(f, x)


# Methods below take no ``self``: an op class is a row of the table, read as
# ``Tanh.backward(...)``. Where a scalar rule is made of IEEE operations only,
# numpy computes the same bits, and ``vbackward = backward`` says so. A unary op
# whose forward is one scalar function names it as ``scalar``.


class Add(Op):
    code, lecture, spellings, arity, method = ADD, "+", ("+",), 2, "__add__"

    def forward(x, y):
        return x + y

    # d/dx (x + y) = 1,  d/dy (x + y) = 1
    def backward(x, y, out, g):
        return g, g

    vforward, vbackward = forward, backward


class Sub(Op):
    code, lecture, spellings, arity, method = SUB, "-", ("-",), 2, "__sub__"

    def forward(x, y):
        return x - y

    # d/dx (x - y) = 1,  d/dy (x - y) = -1
    def backward(x, y, out, g):
        return g, -g

    vforward, vbackward = forward, backward


class Mul(Op):
    code, lecture, spellings, arity, method = MUL, "*", ("*",), 2, "__mul__"

    def forward(x, y):
        return x * y

    # d/dx (x * y) = y,  d/dy (x * y) = x
    def backward(x, y, out, g):
        return y * g, x * g

    vforward, vbackward = forward, backward


class Div(Op):
    code, lecture, spellings, arity, method = DIV, "/", ("/",), 2, "__truediv__"
    forward = ieee.div  # Python raises on x / 0; IEEE gives ±inf or NaN, as numpy does

    # d/dx (x / y) = 1 / y,  d/dy (x / y) = -x / y**2 = -out / y
    def backward(x, y, out, g):
        return ieee.div(g, y), -ieee.div(g * out, y)

    def vforward(x, y):
        return x / y

    def vbackward(x, y, out, g):
        return g / y, -((g * out) / y)


class Pow(Op):
    """``x ** k`` for a constant ``k`` (micrograd's ``**2``, ``**-1``, ``**0.5``)."""

    code, lecture, spellings, arity, method = POW, "**", (), 1, "__pow__"
    forward = ieee.pow

    # d/dx x**k = k * x**(k - 1); at k = 0 it is 0, not 0 * x**-1 (NaN at x = 0)
    def backward(x, k, out, g):
        return (k * ieee.pow(x, k - 1.0) * g if k else 0.0,)

    def vforward(x, k):
        return each(ieee.pow, x, k)

    def vbackward(x, k, out, g):
        return (np.where(k != 0, k * each(ieee.pow, x, k - 1.0) * g, 0.0),)


class Neg(Op):
    code, lecture, spellings, method = NEG, "neg", ("neg",), "__neg__"

    def forward(x, y):
        return -x

    # d/dx (-x) = -1
    def backward(x, y, out, g):
        return (-g,)

    vforward, vbackward = forward, backward


class Relu(Op):
    code, lecture, spellings, method = RELU, "ReLU", ("ReLU", "relu"), "relu"

    def forward(x, y):
        return 0.0 if x <= 0.0 else x  # NaN passes through (NaN <= 0 is False)

    # d/dx max(0, x) = 1 where x > 0 (where out > 0), else 0
    def backward(x, y, out, g):
        return (g if out > 0.0 else 0.0,)

    def vforward(x, y):
        return np.where(x <= 0.0, 0.0, x)

    def vbackward(x, y, out, g):
        return (np.where(out > 0.0, g, 0.0),)


class Tanh(Op):
    code, lecture, spellings, method = TANH, "tanh", ("tanh",), "tanh"
    scalar = math.tanh

    # d/dx tanh(x) = 1 - tanh(x)**2
    def backward(x, y, out, g):
        return ((1.0 - out * out) * g,)

    vbackward = backward


class Exp(Op):
    code, lecture, spellings, method = EXP, "exp", ("exp",), "exp"
    scalar = ieee.exp

    # d/dx e**x = e**x
    def backward(x, y, out, g):
        return (out * g,)

    vbackward = backward


class Log(Op):
    code, lecture, spellings, method = LOG, "log", ("log",), "log"
    scalar = ieee.log

    # d/dx ln(x) = 1 / x
    def backward(x, y, out, g):
        return (ieee.div(g, x),)

    def vbackward(x, y, out, g):
        return (g / x,)


class Sigmoid(Op):
    code, lecture, spellings, method = SIGMOID, "sigmoid", ("sigmoid",), "sigmoid"
    scalar = ieee.sigmoid

    # d/dx s(x) = s(x) * (1 - s(x)),  s(x) = 1 / (1 + e**-x)
    def backward(x, y, out, g):
        return (out * (1.0 - out) * g,)

    vbackward = backward


OP_TABLE: dict[str, type[Op]] = {
    op.code: op for op in (Add, Sub, Mul, Div, Pow, Neg, Relu, Tanh, Exp, Log, Sigmoid)
}
OPS: tuple[str, ...] = (LEAF, *OP_TABLE)  # every op code a node can hold; leaves first
ARITY: dict[str, int] = {code: op.arity for code, op in OP_TABLE.items()}
_BY_SPELLING = {s: op.code for op in OP_TABLE.values() for s in op.spellings}


class UnknownOp(ValueError):
    """An ``_op`` string that names none of the engine's ops (its ``op`` attribute)."""

    def __init__(self, op: str):
        self.op = op
        known = ", ".join(map(repr, _BY_SPELLING))
        super().__init__(
            f"_op must be one of {known} or '**<number>', got {op!r}; gradtrace keeps "
            "no per-node closures, so it can only differentiate its own ops"
        )


def lecture_name(op: str, exponent: float | None = None) -> str:
    """``op`` as micrograd prints it: ``lecture_name("**", 2.0) == "**2"``."""
    if op == POW and exponent is not None:
        k = exponent
        return f"**{int(k)}" if k.is_integer() and abs(k) < 2**53 else f"**{k!r}"
    row = OP_TABLE.get(op)
    return row.lecture if row is not None else op


def from_lecture(op: str) -> tuple[str, float | None]:
    """The op code and exponent an ``_op`` string means: ``from_lecture("**2") == ("**", 2.0)``.

    Takes every spelling in the table (``"ReLU"`` and ``"relu"``, ``"+"``, ...) and
    ``**`` followed by a number. Raises :class:`UnknownOp` (a ValueError) for any
    other string, so a recorder can keep a foreign op as written.
    """
    if not isinstance(op, str):
        raise TypeError(f"_op must be a str, got {type(op).__name__}")
    code = _BY_SPELLING.get(op)
    if code is not None:
        return code, None
    if op.startswith(POW):
        try:
            return POW, float(op[2:])
        except ValueError:
            pass
    raise UnknownOp(op)


def apply(op: str, a: Any, b: Any = None, arg: float | None = None) -> Any:
    """The node ``op`` makes of Value ``a`` (and ``b``, or the exponent ``arg`` of ``**``),
    computed by the Value method that training used, so it is bit for bit the same."""
    row = OP_TABLE.get(op)
    if row is None:
        raise UnknownOp(op)
    make = getattr(a, row.method)
    if row.code == POW:
        if arg is None:
            raise ValueError("a ** node needs its exponent: apply('**', a, arg=k)")
        return make(arg)
    if row.arity == 2:
        if b is None:
            raise ValueError(f"op {op!r} takes two operands")
        return make(b)
    return make()
