"""engine.layout.SameLayout: a new graph is "the same" exactly when its structure arrays are.

The tracer trusts this check to map node i of a step onto node i of a stored
shape, so every way two graphs can differ must be caught: an op, an exponent,
which earlier node an operand is (shared nodes), the node count.
"""

from __future__ import annotations

import math
import random

from gradtrace.engine import Value, structure
from gradtrace.engine.layout import SameLayout


def _layout(root: Value) -> SameLayout:
    nodes, ops, a, b = structure(root)
    return SameLayout(ops, a, b, [v.exponent for v in nodes])


def _key(root: Value) -> tuple:
    nodes, ops, a, b = structure(root)
    pows = tuple(repr(v.exponent) for v in nodes if v.exponent is not None)
    return tuple(ops), tuple(a), tuple(b), pows


def test_the_same_program_on_new_nodes_is_the_same():
    def program(x: Value, w: Value) -> Value:
        h = (x * w + 1).tanh()
        return (h * h + w**2).relu() - h / 3

    same = _layout(program(Value(0.5), Value(-1.0)))
    root = program(Value(2.0), Value(3.0))
    nodes = root.topo()
    assert same(nodes)
    assert nodes == root.topo()  # the check leaves the caller's list as it was


def test_a_different_operand_with_the_same_ops_is_not_the_same():
    x, y = Value(1.0), Value(2.0)
    p = x * y
    same = _layout(p + y)
    assert same((x * y + y).topo())
    # Same node count, same op sequence: only which earlier node the + reads differs.
    other = x * y + x
    assert [v.op for v in other.topo()] == same.ops
    assert not same(other.topo())


def test_swapped_operands_are_not_the_same():
    x, y = Value(1.0), Value(2.0)
    same = _layout((x + y) * (x - y))
    assert same(((y + x) * (y - x)).topo())  # different leaves, same wiring
    assert not same(((x - y) * (x + y)).topo())


def test_a_different_op_or_node_count_is_not_the_same():
    x = Value(1.0)
    same = _layout((x * 2).tanh())
    assert same((Value(5.0) * 2).tanh().topo())
    assert not same((Value(5.0) * 2).relu().topo())
    assert not same((Value(5.0) * 2).topo())
    assert not same(((Value(5.0) * 2).tanh() + 1).topo())


def test_exponents_are_compared_bit_for_bit():
    same = _layout(Value(3.0) ** 2)
    assert same((Value(4.0) ** 2).topo())
    assert same((Value(4.0) ** 2.0).topo())
    assert not same((Value(4.0) ** 3).topo())
    zero = _layout(Value(3.0) ** 0.0)
    assert not zero((Value(3.0) ** -0.0).topo())
    nan = _layout(Value(3.0) ** math.nan)
    assert nan((Value(1.0) ** math.nan).topo())  # NaN is the same NaN, not a new shape
    # Without exponents the check is about structure only.
    _, ops, a, b = structure(Value(3.0) ** 2)
    assert SameLayout(ops, a, b)((Value(3.0) ** 5).topo())


def test_operands_compare_by_identity():
    """The check compares operand tuples with ==, which is identity only while Value
    (and any node class in a graph) keeps object's __eq__."""
    assert Value.__eq__ is object.__eq__
    x, y = Value(1.0), Value(1.0)
    same = _layout(x * x)
    assert not same((x * y).topo())  # equal numbers, distinct nodes


def test_single_leaf_graphs():
    same = _layout(Value(1.0))
    assert same(Value(7.0).topo())
    assert not same((-Value(7.0)).topo())


def _random_graph(rng: random.Random, shared: list[Value]) -> Value:
    """A small graph with random ops, random wiring and nodes used more than once."""
    pool = list(shared) + [Value(rng.uniform(-2, 2)) for _ in range(rng.randint(1, 3))]
    for _ in range(rng.randint(1, 7)):
        x, y = rng.choice(pool), rng.choice(pool)
        kind = rng.randrange(6)
        if kind == 0:
            out = x + y
        elif kind == 1:
            out = x * y
        elif kind == 2:
            out = x - y
        elif kind == 3:
            out = x.tanh()
        elif kind == 4:
            out = x ** rng.choice([2, 3])
        else:
            out = x * rng.choice([2.0, 0.5])
        pool.append(out)
    return sum(pool[-2:], pool[0])


def test_agrees_with_comparing_the_structure_arrays_on_random_graphs():
    """Many small random graphs, every pair: the check says "same" exactly when
    ``structure()``'s arrays and the exponents are equal."""
    rng = random.Random(12)
    params = [Value(0.5), Value(-1.5)]
    graphs = []
    for _ in range(120):
        seed = rng.randrange(40)  # repeats: the same program built again on new nodes
        graphs.append(_random_graph(random.Random(seed), params))
    keys = [_key(g) for g in graphs]
    layouts = [_layout(g) for g in graphs]
    agree = 0
    for i, layout in enumerate(layouts):
        for j, g in enumerate(graphs):
            assert layout(g.topo()) == (keys[i] == keys[j]), (i, j)
            agree += keys[i] == keys[j]
    assert agree > len(graphs)  # some pairs really are the same program
