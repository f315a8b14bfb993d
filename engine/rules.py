"""The backward pass's inner loop: every node's chain rule, in one if-chain.

    >>> from gradtrace.engine import Value
    >>> x = Value(3.0); y = x**2; y.grad = 1.0
    >>> chain([y]); x.grad
    6.0

The rules are those of :data:`gradtrace.engine.ops.OP_TABLE`, where each one is
written once with its math; this is their fast form, and
``tests/engine/test_op_table.py`` checks it against the table bit for bit, op by
op. Every node holds the table's very op code strings, so ops compare by identity
(``op is MUL``), the cheapest test there is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gradtrace.engine.ieee import div as _div
from gradtrace.engine.ieee import pow as _pow
from gradtrace.engine.ops import ADD, DIV, EXP, LEAF, LOG, MUL, NEG, POW, RELU, SIGMOID, SUB, TANH

# Names that lived here before the op table did; still importable from here.
from gradtrace.engine.ops import ARITY as ARITY
from gradtrace.engine.ops import CONSTANT as CONSTANT
from gradtrace.engine.ops import INPUT as INPUT
from gradtrace.engine.ops import LEAF_KINDS as LEAF_KINDS
from gradtrace.engine.ops import OPS as OPS
from gradtrace.engine.ops import PARAMETER as PARAMETER
from gradtrace.engine.ops import TARGET as TARGET
from gradtrace.engine.ops import from_lecture as from_lecture
from gradtrace.engine.ops import lecture_name as lecture_name

if TYPE_CHECKING:  # only for annotations: value.py imports this module
    from gradtrace.engine.value import Value


def chain(nodes: Iterable[Value]) -> None:
    """Apply each node's chain rule, in the given order: every op's gradient, once.

    ``Value.backward()`` runs it over the whole graph in reverse topological
    order, ``Value._backward()`` over one node.
    An if-chain, most frequent ops first, rather than a call to the table's
    ``backward``: a Python call per node would make backward measurably slower.
    Each branch is its op's ``backward`` from the table, added to the operands.
    """
    for v in nodes:
        op = v.op
        if op is LEAF:
            continue
        g = v.grad
        if op is MUL:  # d(xy)/dx = y, d(xy)/dy = x
            a, b = v._a, v._b
            a.grad += b.data * g
            b.grad += a.data * g
        elif op is ADD:  # d(x+y)/dx = d(x+y)/dy = 1
            a, b = v._a, v._b
            a.grad += g
            b.grad += g
        elif op is RELU:  # 1 where x > 0, else 0
            if v.data > 0.0:
                v._a.grad += g
        elif op is TANH:  # 1 - tanh(x)**2
            t = v.data
            v._a.grad += (1.0 - t * t) * g
        elif op is SUB:  # 1 and -1
            a, b = v._a, v._b
            a.grad += g
            b.grad -= g
        elif op is NEG:  # -1
            v._a.grad -= g
        elif op is POW:  # k * x**(k-1)
            k = v._arg
            if k:  # d(x**0)/dx is 0, not 0 * x**-1 (NaN at x = 0)
                a = v._a
                a.grad += k * _pow(a.data, k - 1.0) * g
        elif op is DIV:
            a, b = v._a, v._b
            a.grad += _div(g, b.data)  # d(x/y)/dx = 1/y
            b.grad -= _div(g * v.data, b.data)  # d(x/y)/dy = -x/y**2 = -out/y
        elif op is EXP:  # e**x
            v._a.grad += v.data * g
        elif op is LOG:  # 1/x
            a = v._a
            a.grad += _div(g, a.data)
        elif op is SIGMOID:  # s * (1 - s)
            s = v.data
            v._a.grad += s * (1.0 - s) * g
        else:  # an op added to the table but not here: test_op_table.py fails
            raise RuntimeError(f"no backward rule for op {op!r} in rules.chain")
