"""Code written for the micrograd lecture runs unchanged on gradtrace's Value.

The helpers below are written the way the lecture writes them (a recursive walk
over ``_prev``, a Graphviz-style drawing keyed by ``id`` and ``_op``, a manual
``_backward()`` per node, Neuron/Layer/MLP classes on bare Values), so a failure
here means a student's notebook would break on our engine.
"""

from __future__ import annotations

import doctest
import importlib
import itertools
import math

import numpy as np
import pytest
from gradtrace.engine import Value
from helpers.lecture import LMLP, XS, YS

# -- the lecture's graph walk and drawing -------------------------------------


def trace(root):
    """Every node and edge reachable from ``root``, found through ``_prev``."""
    nodes, edges = set(), set()

    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)

    build(root)
    return nodes, edges


class RecordingDigraph:
    """Stands in for graphviz.Digraph: keeps what draw_dot asks it to draw."""

    def __init__(self):
        self.nodes: dict[str, str] = {}
        self.edges: list[tuple[str, str]] = []

    def node(self, name, label, shape=None):
        self.nodes[name] = label

    def edge(self, tail, head):
        self.edges.append((tail, head))


def draw_dot(root):
    dot = RecordingDigraph()
    nodes, edges = trace(root)
    for n in nodes:
        uid = str(id(n))
        dot.node(uid, f"{{ {n.label} | data {n.data:.4f} | grad {n.grad:.4f} }}", "record")
        if n._op:
            dot.node(uid + n._op, n._op)
            dot.edge(uid + n._op, uid)
    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    return dot


def expression_L():
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return a, b, c, e, d, f, L


def test_prev_and_op_of_the_first_expression():
    a, _, c, e, d, f, L = expression_L()
    assert d._prev == (e, c)  # a tuple in argument order, not micrograd's set
    assert d._op == "+"
    assert L._prev == (d, f) and L._op == "*"
    assert a._prev == () and a._op == ""
    assert L.data == -8.0


def test_draw_dot_walk_over_the_first_expression():
    *_, c, _, d, _, L = expression_L()
    L.backward()
    dot = draw_dot(L)
    records = {v for k, v in dot.nodes.items() if k.isdigit()}
    assert records == {
        "{ a | data 2.0000 | grad 6.0000 }",
        "{ b | data -3.0000 | grad -4.0000 }",
        "{ c | data 10.0000 | grad -2.0000 }",
        "{ e | data -6.0000 | grad -2.0000 }",
        "{ d | data 4.0000 | grad -2.0000 }",
        "{ f | data -2.0000 | grad 4.0000 }",
        "{ L | data -8.0000 | grad 1.0000 }",
    }
    ops = sorted(v for k, v in dot.nodes.items() if not k.isdigit())
    assert ops == ["*", "*", "+"]
    assert len(dot.edges) == 3 + 6  # op -> result for each op, child -> op for each edge
    assert (str(id(c)), str(id(d)) + "+") in dot.edges
    assert (str(id(d)) + "+", str(id(d))) in dot.edges


def test_a_plus_a_accumulates():
    a = Value(3.0, label="a")
    b = a + a
    b.label = "b"
    b.backward()
    assert b._prev == (a, a)
    assert a.grad == 2.0
    nodes, edges = trace(b)
    assert nodes == {a, b} and edges == {(a, b)}


# -- the neuron, by hand and by backward() ------------------------------------

B = 6.8813735870195432  # the lecture's bias: makes n = atanh(1/sqrt(2)), o = 1/sqrt(2)
# The lecture's PyTorch check builds it as torch.tensor([B]).double(): a float32
# tensor widened to float64, so PyTorch really used B rounded to float32.
B_FLOAT32 = float(np.float32(B))


def neuron(bias=B):
    x1 = Value(2.0, label="x1")
    x2 = Value(0.0, label="x2")
    w1 = Value(-3.0, label="w1")
    w2 = Value(1.0, label="w2")
    b = Value(bias, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    return dict(x1=x1, x2=x2, w1=w1, w2=w2, b=b, x1w1=x1w1, x2w2=x2w2, x1w1x2w2=x1w1x2w2, n=n, o=o)


def manual_backward(v):
    """The lecture's sequence: seed the output, then each node's own step, top down."""
    v["o"].grad = 1.0
    for name in ("o", "n", "b", "x1w1x2w2", "x1w1", "x2w2"):
        v[name]._backward()


# The lecture's figures: exact for B, and what its PyTorch comparison printed for B_FLOAT32.
LECTURE = {"o": math.sqrt(0.5), "n": 0.5, "x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0}
PYTORCH = {"o": 0.7071066904050358, "x1": -1.5000003851533106, "w1": 1.0000002567688737,
           "x2": 0.5000001283844369, "w2": 0.0}  # fmt: skip


@pytest.mark.parametrize(
    "bias, want, rel", [(B, LECTURE, 1e-14), (B_FLOAT32, PYTORCH, 1e-12)], ids=["B", "B-float32"]
)
def test_manual_backward_gives_the_lecture_numbers(bias, want, rel):
    v = neuron(bias)
    manual_backward(v)
    assert f"{v['o'].data:.4f}" == "0.7071"
    assert f"{v['x1'].grad:.4f}, {v['w1'].grad:.4f}" == "-1.5000, 1.0000"
    for name, x in want.items():
        got = v[name].data if name == "o" else v[name].grad
        assert got == pytest.approx(x, rel=rel, abs=0.0), name
    assert v["b"].grad == v["x1w1"].grad == v["x2w2"].grad == v["n"].grad


def test_manual_backward_equals_backward_exactly():
    by_hand, automatic = neuron(), neuron()
    manual_backward(by_hand)
    automatic["o"].backward()
    assert {k: x.grad for k, x in by_hand.items()} == {k: x.grad for k, x in automatic.items()}


def test_backward_of_one_node_touches_only_its_parents():
    v = neuron()
    v["o"].grad = 1.0
    v["o"]._backward()
    assert v["n"].grad == pytest.approx(1.0 - v["o"].data ** 2)
    assert all(v[k].grad == 0.0 for k in ("b", "x1w1x2w2", "x1", "w1"))
    v["x1w1"]._backward()  # too early: its own grad is still 0, so nothing flows
    assert v["x1"].grad == 0.0 and v["w1"].grad == 0.0
    v["x1"]._backward()  # a leaf has no rule
    assert v["x1"].grad == 0.0


def test_tanh_broken_into_exp_matches_tanh():
    v = neuron()
    e = (2 * v["n"]).exp()
    o = (e - 1) / (e + 1)
    o.backward()
    assert o.data == pytest.approx(LECTURE["o"], rel=1e-14)
    assert v["x1"].grad == pytest.approx(LECTURE["x1"], rel=1e-12)
    assert v["w1"].grad == pytest.approx(LECTURE["w1"], rel=1e-12)
    assert v["x2"].grad == pytest.approx(LECTURE["x2"], rel=1e-12)


# -- _op strings and the constructor's _children/_op --------------------------

# (expression, _op we print, whether micrograd 0.1.0 has the same op to compare)
OP_STRINGS = [
    (lambda a, b: a + b, "+", True),
    (lambda a, b: a * b, "*", True),
    (lambda a, b: a**2, "**2", True),
    (lambda a, b: a**-1, "**-1", True),
    (lambda a, b: a**0.5, "**0.5", True),
    (lambda a, b: a.relu(), "ReLU", True),
    (lambda a, b: a.tanh(), "tanh", False),
    (lambda a, b: a.exp(), "exp", False),
    (lambda a, b: a - b, "-", False),
    (lambda a, b: a / b, "/", False),
    (lambda a, b: -a, "neg", False),
    (lambda a, b: a.log(), "log", False),
    (lambda a, b: a.sigmoid(), "sigmoid", False),
    (lambda a, b: a ** (1 / 3), f"**{1 / 3!r}", False),
]


@pytest.mark.parametrize("make, op, in_micrograd", OP_STRINGS, ids=[r[1] for r in OP_STRINGS])
def test_op_strings(make, op, in_micrograd):
    out = make(Value(1.5), Value(0.5))
    assert out._op == op
    if in_micrograd:
        micrograd = pytest.importorskip("micrograd.engine")
        assert make(micrograd.Value(1.5), micrograd.Value(0.5))._op == op


@pytest.mark.parametrize("make, op, _", OP_STRINGS, ids=[r[1] for r in OP_STRINGS])
def test_node_rebuilt_from_prev_and_op_has_the_same_gradients(make, op, _):
    a, b = Value(1.5), Value(0.5)
    out = make(a, b)
    out.backward()
    want = (a.grad, b.grad)
    a.grad = b.grad = 0.0
    copy = Value(out.data, out._prev, out._op)
    assert copy._op == op and copy._prev == out._prev
    copy.backward()
    assert (a.grad, b.grad) == want


def test_prev_and_op_are_read_only():
    v = Value(1.0) * 2
    with pytest.raises(AttributeError):
        v._prev = ()
    with pytest.raises(AttributeError):
        v._op = "+"


def test_a_node_made_by_hand_like_the_lecture_does():
    x = Value(0.5)
    t = (math.exp(2 * x.data) - 1) / (math.exp(2 * x.data) + 1)
    out = Value(t, (x,), "tanh")
    out.backward()
    assert x.grad == pytest.approx(1 - math.tanh(0.5) ** 2, rel=1e-15)


ONE = (Value(1.0),)
BAD_CHILDREN_OR_OP = [
    (
        "positional-label",
        lambda: Value(2.0, "a"),
        TypeError,
        r"by keyword: Value\(2.0, label='a'\)",
    ),
    (
        "set-children",
        lambda: Value(1.0, set(ONE), "tanh"),
        TypeError,
        r"got set .* as a set cannot",
    ),
    ("unknown-op", lambda: Value(1.0, ONE, "sin"), ValueError, r"_op must be one of .*'sin'"),
    ("bad-exponent", lambda: Value(1.0, ONE, "**x"), ValueError, r"got '\*\*x'"),
    ("arity-2", lambda: Value(1.0, ONE, "+"), ValueError, r"'\+' takes 2 operand"),
    ("arity-1", lambda: Value(1.0, (), "tanh"), ValueError, r"'tanh' takes 1 operand\(s\), got 0"),
    ("no-op", lambda: Value(1.0, ONE), ValueError, r"got ''"),
    ("bare-pow", lambda: Value(1.0, ONE, "**"), ValueError, r"got '\*\*';"),
    ("non-value", lambda: Value(1.0, (*ONE, 3.0), "+"), TypeError, r"must hold Values, got float"),
    ("non-str-op", lambda: Value(1.0, ONE, 3), TypeError, r"_op must be a str, got int"),
]


@pytest.mark.parametrize(
    "make, error, message", [pytest.param(*row[1:], id=row[0]) for row in BAD_CHILDREN_OR_OP]
)
def test_bad_children_or_op_raise_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


# -- the lecture's tiny network, on both engines ------------------------------


def lecture_training(V, activation=lambda v: v.tanh(), steps=20, seed=0):
    """The lecture's Neuron/Layer/MLP and 4-sample loop on Value class ``V``; the losses."""
    m = LMLP(3, [4, 4, 1], seed=seed, V=V, activation=activation)
    assert len(m.parameters()) == 41
    losses = []
    for _ in range(steps):
        ypred = [m(x) for x in XS]
        loss = np.array([(yout - ygt) ** 2 for ygt, yout in zip(YS, ypred)]).sum()
        for p in m.parameters():
            p.grad = 0.0
        loss.backward()
        for p in m.parameters():
            p.data += -0.05 * p.grad
        losses.append(loss.data)
    return losses


def test_lecture_network_trains():
    losses = lecture_training(Value)
    assert losses[-1] < losses[0] / 4
    assert all(b < a for a, b in itertools.pairwise(losses))


def test_lecture_network_trains_as_on_micrograd():
    """micrograd 0.1.0 has no tanh (nor exp): both squash with x / sqrt(1 + x**2) instead."""
    micrograd = pytest.importorskip("micrograd.engine")

    def softsign(v):
        return v * (1 + v**2) ** -0.5

    ours = lecture_training(Value, softsign)
    theirs = lecture_training(micrograd.Value, softsign)
    assert ours[-1] < ours[0] / 4
    assert ours == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("module", ["value", "ops", "rules", "optim", "ieee", "graph"])
def test_docstring_examples_hold(module):
    """Run through the package: a module loaded twice would have its own op constants."""
    result = doctest.testmod(importlib.import_module(f"gradtrace.engine.{module}"))
    assert result.attempted > 0 and result.failed == 0
