"""The scalar autograd node.

    >>> a, b = Value(-4.0, label="a"), Value(2.0, label="b")
    >>> g = a * b + b**3
    >>> g.backward()
    >>> a.grad, b.grad
    (2.0, 8.0)

Every node holds its number, its gradient, the op that made it (an op code of
:mod:`gradtrace.engine.ops`) and its operands in two slots, ``_a`` and ``_b``
(:attr:`Value.parents` gives them as a tuple). Unlike micrograd there is no
``_backward`` closure: a closure captures its own output, so every node would sit
in a reference cycle and Python's cyclic garbage collector would spend most of a
training step walking them. Here the backward rule is chosen by op code (the op
table in :mod:`gradtrace.engine.ops`, run by :func:`gradtrace.engine.rules.chain`),
nodes make no cycles, and reference counting frees a step's graph the moment it
is dropped.

The lecture's spelling still works: ``Value(data, _children, _op, label)``,
``v._prev``, ``v._op`` and a per-node ``v._backward()``, so code written for
micrograd runs unchanged.

Operands keep their argument order (never a set's), and the topological sort
walks them in that order, so the same program gives the same node order in every
run and every step.

Arithmetic follows IEEE 754 rather than raising: ``x / 0`` is ``±inf`` or NaN,
``log(0)`` is ``-inf``, ``exp(1000)`` is ``inf``. A flight recorder has to see
the NaN a diverging run produces, not a Python exception in its place.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Union

from gradtrace.engine.ieee import div as _div
from gradtrace.engine.ieee import exp as _exp
from gradtrace.engine.ieee import log as _log
from gradtrace.engine.ieee import pow as _pow
from gradtrace.engine.ieee import sigmoid as _sigmoid
from gradtrace.engine.ops import (
    ADD,
    ARITY,
    CONSTANT,
    DIV,
    EXP,
    INPUT,
    LEAF,
    LEAF_KINDS,
    LOG,
    MUL,
    NEG,
    POW,
    RELU,
    SIGMOID,
    SUB,
    TANH,
    from_lecture,
    lecture_name,
)
from gradtrace.engine.ops import OPS as OPS  # re-exported: it was defined here
from gradtrace.engine.rules import chain as _chain

Number = Union[int, float]

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


def _constant(x: Number) -> Value:
    """The leaf an op makes of a plain-number operand (the ``3`` of ``v * 3``)."""
    v = Value(x)
    v._kind = CONSTANT
    return v


def _lift(x: Value | Number) -> Value:
    if type(x) is Value:
        return x
    return _constant(x)


class Value:
    """A scalar that remembers how it was computed, so gradients can flow back.

    >>> x = Value(3.0, label="x")
    >>> y = 2 * x**2 + 1
    >>> y.backward(); x.grad
    12.0
    """

    # ``__dict__`` last: the lecture's optimizers keep their state on the
    # parameters (``p.m = 0``). It is made only when such an attribute is set, so
    # the slots above stay as fast. CPython 3.11 puts a dict's two pointers in front
    # of the node; ten slots keep the node at 128 bytes with them, the allocator's
    # size class of the node without a dict (eleven made it 144: a moons step 4-10 %
    # slower, benchmarks/value_ab.py). So ``_topo``, the order ``backward()`` caches
    # on the root alone, once a step, lives in that dict.
    __slots__ = (
        "data", "grad", "op", "label", "_a", "_b", "_arg", "_seen", "_index", "_kind",
        "__dict__",
    )  # fmt: skip

    def __init__(
        self,
        data: Number,
        _children: tuple[Value, ...] = (),
        _op: str = "",
        label: str = "",
        kind: str = INPUT,
    ) -> None:
        if isinstance(data, Value):
            raise TypeError("Value() takes a plain number, got a Value; use it directly")
        if not isinstance(data, Real) or isinstance(data, bool):
            raise TypeError(
                f"Value() takes a real number, got {type(data).__name__} {data!r}; "
                "convert it with float() first"
            )
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}")
        if kind not in LEAF_KINDS:
            raise ValueError(f"kind must be one of {LEAF_KINDS}, got {kind!r}")
        self.data = float(data)
        self.grad = 0.0
        self.op = LEAF
        self.label = label
        self._kind = kind
        # Parents: two slots, not a tuple, so a node is one object for the GC.
        self._a: Value | _NoParent = _NO
        self._b: Value | _NoParent = _NO
        self._seen: object = None  # token of the traversal that last visited this node
        self._index = -1  # position in that traversal's order
        if _children or _op:  # the lecture's way of making an inner node by hand
            self._link(_children, _op)

    def _link(self, children: tuple[Value, ...], op: str) -> None:
        """Make this node ``op`` of ``children``, checking both against the ops we know."""
        if not isinstance(children, (tuple, list)):
            hint = (
                f"to name a value pass the label by keyword: "
                f"Value({self.data!r}, label={children!r})"
                if isinstance(children, str)
                else "a tuple keeps the operands in argument order, as a set cannot"
            )
            raise TypeError(
                f"_children must be a tuple of Values, got {type(children).__name__} "
                f"{children!r}; {hint}"
            )
        for child in children:
            if not isinstance(child, Value):
                raise TypeError(f"_children must hold Values, got {type(child).__name__}")
        code, arg = from_lecture(op)
        if len(children) != ARITY[code]:
            raise ValueError(
                f"_op {op!r} takes {ARITY[code]} operand(s), got {len(children)} in _children"
            )
        self.op = code
        self._a = children[0]
        if len(children) == 2:
            self._b = children[1]
        if arg is not None:
            self._arg = arg

    @property
    def parents(self) -> tuple[Value, ...]:
        """The operands this node was computed from, in argument order."""
        a, b = self._a, self._b
        if a is _NO:
            return ()
        return (a,) if b is _NO else (a, b)

    @property
    def kind(self) -> str:
        """What a leaf stands for: ``"input"``, ``"constant"``, ``"target"`` or
        ``"parameter"``; ``""`` for a computed node.

            >>> x = Value(2.0); (x * 3).parents[1].kind, x.kind, (x * 3).kind
            ('constant', 'input', '')

        A leaf made by hand is an input unless ``Value(..., kind=...)`` says
        otherwise; the plain number of ``v * 3`` becomes a constant; the loss
        functions mark their targets and ``nn`` its weights and biases. Only
        leaves set the slot, so building inner nodes costs no more time (each
        node is one pointer wider, as any slot makes it).
        """
        return getattr(self, "_kind", INPUT) if self.op is LEAF else ""

    @property
    def exponent(self) -> float | None:
        """The constant exponent of a ``**`` node, else None."""
        return self._arg if self.op is POW else None

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The lecture's name for :attr:`parents` (a tuple here, in argument order)."""
        return self.parents

    @property
    def _op(self) -> str:
        """The op as micrograd prints it: ``'+'``, ``'*'``, ``'**2'``, ``'tanh'``, ``'ReLU'``."""
        return lecture_name(self.op, self.exponent)

    def _backward(self) -> None:
        """Pass this node's ``grad`` to its parents only, by its op's chain rule.

            >>> x = Value(3.0); y = x * x; y.grad = 1.0; y._backward(); x.grad
            6.0

        The lecture's manual step; :meth:`backward` does it for every node in order.
        """
        _chain((self,))

    def __repr__(self) -> str:
        label = f"{self.label}|" if self.label else ""
        return f"Value({label}data={self.data!r}, grad={self.grad!r})"

    # -- binary ops --------------------------------------------------------
    def __add__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else _constant(other)
        return _node(self.data + other.data, ADD, self, other)  # self + other

    def __sub__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else _constant(other)
        return _node(self.data - other.data, SUB, self, other)  # self - other

    def __mul__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else _constant(other)
        return _node(self.data * other.data, MUL, self, other)  # self * other

    def __truediv__(self, other: Value | Number) -> Value:
        other = other if type(other) is Value else _constant(other)
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
        _chain(reversed(topo))


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
