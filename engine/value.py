"""The scalar autograd node.

    >>> a, b = Value(-4.0, "a"), Value(2.0, "b")
    >>> g = a * b + b**3
    >>> g.backward()
    >>> a.grad, b.grad
    (2.0, 8.0)

Every node holds its number, its gradient, the op that made it and a tuple of
parents. Unlike micrograd there is no ``_backward`` closure: a closure captures
its own output, so every node would sit in a reference cycle and Python's cyclic
garbage collector would spend most of a training step walking them. Here the
backward rule is chosen by op code in one loop, nodes make no cycles, and
reference counting frees a step's graph the moment it is dropped.

Parents are a tuple, never a set, and the topological sort walks them in order,
so the same program gives the same node order in every run and every step.

Arithmetic follows IEEE 754 rather than raising: ``x / 0`` is ``±inf`` or NaN,
``log(0)`` is ``-inf``, ``exp(1000)`` is ``inf``. A flight recorder has to see
the NaN a diverging run produces, not a Python exception in its place.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Union

Number = Union[int, float]

# Op codes. Leaves have the empty op. Kept as short strings so a node prints
# readably; comparisons against these interned constants are identity checks.
LEAF, ADD, SUB, MUL, DIV, POW, NEG = "", "+", "-", "*", "/", "**", "neg"
RELU, TANH, EXP, LOG, SIGMOID = "relu", "tanh", "exp", "log", "sigmoid"

OPS: tuple[str, ...] = (LEAF, ADD, SUB, MUL, DIV, POW, NEG, RELU, TANH, EXP, LOG, SIGMOID)

_new = object.__new__
_EXPANDED = object()  # stack marker used by Value.topo


class _NoParent:
    """Stands in the parent slots of leaves (and ``_b`` of unary nodes).

    Its ``_index`` of -1 lets :func:`structure` read every parent index in one
    comprehension, no per-node ``if`` in Python.
    """

    __slots__ = ("_index",)

    def __repr__(self) -> str:
        return "<no parent>"


_NO = _NoParent()
_NO._index = -1
_last_traversal: list[object] = [None]  # token of the most recent topo(); see structure()
_inf, _nan = math.inf, math.nan


def _node(data: float, op: str, a: Value, b: Value | _NoParent = _NO) -> Value:
    """Make an inner node without the checks of the public constructor (hot path)."""
    v = _new(Value)
    v.data = data
    v.grad = 0.0
    v.op = op
    v.label = ""
    v._a = a
    v._b = b
    v._seen = None
    return v


def _lift(x: Value | Number) -> Value:
    if type(x) is Value:
        return x
    return Value(x)


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:  # IEEE: a/0 is ±inf, 0/0 is NaN
        if a == 0.0 or a != a:
            return _nan
        return math.copysign(_inf, a) * math.copysign(1.0, b)


def _pow(a: float, k: float) -> float:
    try:
        r = a**k
    except ZeroDivisionError:  # 0.0 ** negative
        return _inf if (k % 2 != 1 or math.copysign(1.0, a) > 0) else -_inf
    except OverflowError:
        if a < 0.0 and k % 1.0:  # negative base, fractional exponent: no real result
            return _nan
        return _inf if a > 0 or k % 2 == 0 else -_inf
    if type(r) is complex:  # negative base, fractional exponent
        return _nan
    return float(r)


def _exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return _inf


def _log(a: float) -> float:
    if a > 0.0:
        return math.log(a)
    if a == 0.0:
        return -_inf
    return _nan  # negative or NaN


def _sigmoid(a: float) -> float:
    # Two branches so neither exp can overflow.
    if a >= 0.0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


class Value:
    """A scalar that remembers how it was computed, so gradients can flow back.

    >>> x = Value(3.0, label="x")
    >>> y = 2 * x**2 + 1
    >>> y.backward(); x.grad
    12.0
    """

    __slots__ = ("data", "grad", "op", "label", "_a", "_b", "_arg", "_seen", "_index", "_topo")

    def __init__(self, data: Number, label: str = "") -> None:
        if isinstance(data, Value):
            raise TypeError("Value() takes a plain number, got a Value; use it directly")
        if not isinstance(data, Real) or isinstance(data, bool):
            raise TypeError(
                f"Value() takes a real number, got {type(data).__name__} {data!r}; "
                "convert it with float() first"
            )
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self.op = LEAF
        self.label = label
        # Parents: two slots, not a tuple, so a node is one object for the GC.
        self._a: Value | _NoParent = _NO
        self._b: Value | _NoParent = _NO
        self._seen: object = None  # token of the traversal that last visited this node
        self._index = -1  # position in that traversal's order

    @property
    def parents(self) -> tuple[Value, ...]:
        """The operands this node was computed from, in argument order."""
        a, b = self._a, self._b
        if a is _NO:
            return ()
        return (a,) if b is _NO else (a, b)

    @property
    def exponent(self) -> float | None:
        """The constant exponent of a ``**`` node, else None."""
        return self._arg if self.op is POW else None

    def __repr__(self) -> str:
        label = f"{self.label}|" if self.label else ""
        return f"Value({label}data={self.data!r}, grad={self.grad!r})"

    # -- binary ops --------------------------------------------------------
    def __add__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else Value(other)
        return _node(self.data + other.data, ADD, self, other)  # self + other

    def __sub__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else Value(other)
        return _node(self.data - other.data, SUB, self, other)  # self - other

    def __mul__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else Value(other)
        return _node(self.data * other.data, MUL, self, other)  # self * other

    def __truediv__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else Value(other)
        return _node(_div(self.data, other.data), DIV, self, other)  # self / other

    def __pow__(self, k: Number) -> Value:
        if isinstance(k, Value) or not isinstance(k, Real) or isinstance(k, bool):
            raise TypeError(
                f"the exponent must be an int or float constant, got {type(k).__name__}; "
                "for a Value exponent write (y * x.log()).exp()"
            )
        out = _node(_pow(self.data, k), POW, self)  # self ** k
        out._arg = float(k)
        return out

    # Reflected forms put the plain number on the left: 1 - v, 10 / v, 2 * v.
    def __radd__(self, other: Number) -> Value:
        return self + other  # other + self

    def __rmul__(self, other: Number) -> Value:
        return self * other  # other * self

    def __rsub__(self, other: Number) -> Value:
        return _lift(other) - self  # other - self

    def __rtruediv__(self, other: Number) -> Value:
        return _lift(other) / self  # other / self

    # -- unary ops ---------------------------------------------------------
    def __neg__(self) -> Value:
        return _node(-self.data, NEG, self)  # -self

    def relu(self) -> Value:
        d = self.data
        # Written so NaN passes through (NaN <= 0 is False), as in micrograd.
        return _node(0.0 if d <= 0.0 else d, RELU, self)  # max(0, self)

    def tanh(self) -> Value:
        return _node(math.tanh(self.data), TANH, self)  # tanh(self)

    def exp(self) -> Value:
        return _node(_exp(self.data), EXP, self)  # e ** self

    def log(self) -> Value:
        return _node(_log(self.data), LOG, self)  # ln(self)

    def sigmoid(self) -> Value:
        return _node(_sigmoid(self.data), SIGMOID, self)  # 1 / (1 + e**-self)

    # -- graph -------------------------------------------------------------
    def topo(self) -> list[Value]:
        """Every node this one depends on, parents before children, ending with itself.

        The order is a depth-first post-order over parents in argument order, so
        it depends only on the program, never on memory addresses or hashing.
        """
        cached = getattr(self, "_topo", None)
        if cached is not None:
            return [*cached[1], self]
        return self._traverse()

    def _traverse(self) -> list[Value]:
        # Iterative DFS (no recursion limit). A node is pushed, then _EXPANDED,
        # then its parents; meeting _EXPANDED again means all its parents are
        # emitted, so the node below it is emitted too. A visited node carries
        # this traversal's token in ``_seen`` (cheaper than a set of ids) and its
        # position in ``_index``.
        token = object()
        _last_traversal[0] = token
        order: list[Value] = []
        stack: list[Value | object] = [self]
        push, pop, emit = stack.append, stack.pop, order.append
        i = 0
        while stack:
            v = pop()
            if v is _EXPANDED:
                v = pop()
                v._index = i
                i += 1
                emit(v)
                continue
            if v._seen is token:
                continue
            v._seen = token
            a = v._a
            if a is _NO:
                v._index = i
                i += 1
                emit(v)
                continue
            push(v)
            push(_EXPANDED)
            b = v._b
            if b is not _NO and b._seen is not token:
                push(b)
            if a._seen is not token:
                push(a)
        # Cache without the root itself: the root holding a list that holds the
        # root would be a reference cycle, exactly what this engine avoids.
        order.pop()
        self._topo = (token, order)
        return [*order, self]

    def backward(self) -> None:
        """Fill ``.grad`` of every node below with d(self)/d(node), accumulating.

        Gradients add up (a node used twice gets both contributions), so call
        ``model.zero_grad()`` between steps, as in micrograd and PyTorch.
        """
        topo = self.topo()
        self.grad = 1.0
        for v in reversed(topo):
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


def topo(root: Value) -> list[Value]:
    """The deterministic topological order of ``root``'s graph (see :meth:`Value.topo`)."""
    return root.topo()


def structure(root: Value) -> tuple[list[Value], list[str], list[int], list[int]]:
    """``root``'s graph as arrays: ``(nodes, ops, parent_a, parent_b)``.

        >>> x = Value(3.0)
        >>> nodes, ops, a, b = structure(x * x + 1)
        >>> ops, a, b
        (['', '*', '', '+'], [-1, 0, -1, 1], [-1, 0, -1, 2])

    ``nodes`` is ``root.topo()``; ``parent_a[i]``/``parent_b[i]`` are the
    positions of node i's operands in it, -1 where there is none. Two graphs
    built by the same program give equal ``ops`` and parent arrays, so node i of
    one step is node i of the next. Made for the tracer: the loops run in C.
    """
    cached = getattr(root, "_topo", None)
    if cached is not None and cached[0] is _last_traversal[0]:
        nodes = [*cached[1], root]
    else:
        # No traversal yet, or another one ran since and may have renumbered
        # shared nodes (parameters): number this graph again.
        nodes = root._traverse()
    # Comprehensions, not attrgetter maps: CPython specializes their slot reads,
    # and the dotted getters were the tracer's largest per-step cost.
    ops = [v.op for v in nodes]
    return nodes, ops, [v._a._index for v in nodes], [v._b._index for v in nodes]
