"""The steady-state walk of a foreign graph (``foreignguide.Guide``): numbered by the last
step's graph, it must number every node exactly as the full key walk does, whatever order
the parent sets iterate in, and refuse (so the full walk runs) any graph that is not the
last step's, however small the difference. Every test runs twice: with the compiled walk
(``_guidedwalk.c``) and with the generation walk in Python that stands in without it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from gradtrace.engine import make_moons
from gradtrace.tracer.recording import foreignguide
from gradtrace.tracer.recording.capture import GraphCapture
from gradtrace.tracer.recording.foreign import _OPS, Walk, capture_foreign
from gradtrace.tracer.recording.foreignguide import Guide
from helpers.lecture import LMLP, XS, YS

from gradtrace import tracer

micrograd = pytest.importorskip("micrograd")
from micrograd import nn as mg_nn  # noqa: E402
from test_foreign import moons_loss, shuffled_sets  # noqa: E402


@pytest.fixture(params=["compiled", "python"], autouse=True)
def walker(request, monkeypatch) -> str:
    """Which guided walk runs: the compiled one, or the Python one in its place."""
    if request.param == "python":
        monkeypatch.setattr(foreignguide, "_guidedwalk", None)
    else:
        request.getfixturevalue("compiled_walk")
    return request.param


class V:
    """The smallest micrograd-style node; ``tuple_prev`` keeps the parents in order."""

    def __init__(self, data, children=(), op="", tuple_prev=False):
        self.data, self.grad, self._op = data, 0.0, op
        self._prev = tuple(children) if tuple_prev else set(children)


def _graphs(kind: str, steps: int):
    """``steps`` graphs of one model, its weights moved between them, sets shuffled."""
    rng = random.Random(5)
    if kind == "micrograd":
        X, y = make_moons(12, noise=0.1, seed=2)
        random.seed(1337)
        model = mg_nn.MLP(2, [6, 6, 1])
        make = lambda: moons_loss(model, X, y)[0]  # noqa: E731
    else:
        model = LMLP(3, [4, 4, 1], seed=3)
        make = lambda: sum((model(x) - t) ** 2 for x, t in zip(XS, YS))  # noqa: E731
    index = {id(p): i for i, p in enumerate(model.parameters())}
    for _ in range(steps):
        loss = make()
        loss.backward()
        shuffled_sets(loss, rng)
        yield loss, index
        for p in model.parameters():
            p.data -= 0.01 * p.grad
            p.grad = 0.0


def _guide(root, index) -> Guide | None:
    return Guide.build(Walk(root, index), index, _OPS.get)


def _numbered(guide: Guide, root, index) -> list | None:
    """The guide's numbering of ``root``'s graph in canonical order, None if refused."""
    found = guide.number(root, index)
    if found is None:
        return None
    nodes, _, _, order = found
    return nodes if order is None else [nodes[j] for j in order.tolist()]


@pytest.mark.parametrize("kind", ["micrograd", "lecture"])
def test_the_guided_walk_numbers_every_node_as_the_key_walk_does(kind):
    guide = None
    guided = 0
    for loss, index in _graphs(kind, 4):
        full = Walk(loss, index)
        if guide is not None:
            walk = Walk(loss, index, None, guide)
            guided += walk.guided
            assert [id(v) for v in walk.nodes] == [id(v) for v in full.nodes]
            assert (walk.ops, walk.a, walk.b) == (full.ops, full.a, full.b)
            assert walk.params == full.params
            assert walk.key == full.key
            data, grad = walk.arrays()
            assert data.tolist() == [float(v.data) for v in full.nodes]
            assert grad.tolist() == [float(v.grad) for v in full.nodes]
        guide = Guide.build(full, index, _OPS.get)
        guide.shape = _ShapeOf(full)
    # Every step after the first follows its guide: the lecture's w0*x0 + w1*x1 and
    # micrograd's data_loss + reg_loss are told apart a few levels up.
    assert guided == 3


class _ShapeOf:
    def __init__(self, walk: Walk):
        self.ops, self.a, self.b, self.exponents = walk.ops, walk.a, walk.b, walk.exponents


def test_a_changed_graph_is_not_taken_for_the_guide():
    graphs = _graphs("micrograd", 2)
    first, index = next(graphs)
    guide = _guide(first, index)
    second, _ = next(graphs)
    assert _numbered(guide, second, index) == Walk(second, index).nodes
    bigger = second * second  # one node more on top: not the guide's graph
    assert guide.number(bigger, index) is None
    walk = Walk(bigger, index, None, guide)
    assert not walk.guided and walk.nodes == Walk(bigger, index).nodes


def _pair(a_or_a2: str):
    """``a*b + a*c`` (``b``, ``c`` watched), or ``a*b + a2*c``: ``a2`` another input
    where the guide has the shared ``a`` again. The edge to it is not the one the
    guided walk follows to ``a``: only the edge check sees it."""
    a, b, c = V(2.0), V(3.0), V(5.0)
    other = a if a_or_a2 == "a" else V(2.0)
    u, v = V(6.0, (a, b), "*"), V(10.0, (other, c), "*")
    return V(16.0, (u, v), "+"), {id(b): 0, id(c): 1}


def test_an_edge_the_walk_did_not_follow_is_checked():
    root, index = _pair("a")
    guide = _guide(root, index)
    again, index2 = _pair("a")
    assert _numbered(guide, again, index2) == Walk(again, index2).nodes
    changed, index3 = _pair("a2")
    assert len(Walk(changed, index3).nodes) == len(guide.order) + 1
    assert guide.number(changed, index3) is None


def test_two_positions_holding_one_node_are_refused():
    # The guide's (x + y) * (x + y) with two sums; then one sum used twice: in tuples,
    # every edge is where the guide has it, only the nodes are fewer.
    def graph(shared: bool):
        x, y = V(1.0), V(2.0)
        s1 = V(3.0, (x, y), "+", tuple_prev=True)
        s2 = s1 if shared else V(3.0, (x, y), "+", tuple_prev=True)
        return V(9.0, (s1, s2), "*", tuple_prev=True)

    guide = _guide(graph(False), {})
    assert _numbered(guide, graph(False), {}) is not None
    merged = graph(True)
    assert len(Walk(merged, {}).nodes) == len(guide.order) - 1
    assert guide.number(merged, {}) is None


def test_a_tuple_where_the_guide_had_a_set_is_refused():
    x, w = V(2.0), V(3.0)
    index = {id(w): 0}
    guide = _guide(V(6.0, (x, w), "*"), index)
    first, second = Walk(V(6.0, (x, w), "*"), index).nodes[:2]  # a set: in key order
    as_tuple = V(6.0, (second, first), "*", tuple_prev=True)  # a tuple keeps its own
    assert Walk(as_tuple, index).nodes[:2] == [second, first]
    assert guide.number(as_tuple, index) is None


def test_another_op_string_or_parameter_is_refused():
    def graph(op: str, param_first: bool):
        x, w, w2 = V(2.0), V(3.0), V(4.0)
        index = {id(w): 0, id(w2): 1} if param_first else {id(w2): 0, id(w): 1}
        return V(6.0, (V(6.0, (x, w), "*"), w2), op), index

    guide = _guide(*graph("+", True))
    assert guide.number(*graph("+", True)) is not None
    assert guide.number(*graph("-", True)) is None  # the root's op
    assert guide.number(*graph("+", False)) is None  # another parameter at a leaf


def test_shuffled_sets_follow_the_guide_and_a_changed_graph_is_recorded_as_itself(db_url):
    """Through ``run.log``: every step's sets shuffled on purpose; the batch changes
    at step 3 and back at step 5. Each step records what a fresh full walk numbers."""
    rng = random.Random(7)
    random.seed(1337)
    model = mg_nn.MLP(2, [4, 1])
    index = {id(p): i for i, p in enumerate(model.parameters())}
    X, y = make_moons(10, noise=0.1, seed=3)
    graphs = GraphCapture(index)
    expected, planned = [], []
    with tracer.record("changing", db=db_url) as run:
        run.watch(model)
        for step in range(7):
            n = 6 if step in (3, 4) else 10
            loss = moons_loss(model, X[:n], y[:n])[0]
            model.zero_grad()
            loss.backward()
            shuffled_sets(loss, rng)
            full = Walk(loss, index)
            expected.append(([float(v.data) for v in full.nodes], full.ops, full.a, full.b))
            snap = capture_foreign(graphs, loss, step)  # the same capture run.log does
            assert snap.data.tolist() == expected[-1][0]
            assert (snap.shape.ops, snap.shape.a, snap.shape.b) == expected[-1][1:]
            planned.append(graphs.__dict__["foreign_guide"] is not None)
            run.log(loss)
            for p in model.parameters():
                p.data -= 0.05 * p.grad
    # A plan once a shape repeats, dropped when the graph changes (steps 3 and 5).
    assert planned == [False, True, True, False, True, False, True]
    view = tracer.connect(db_url).run("changing")
    keys = view.steps()["graph_key"].tolist()
    assert keys[0] == keys[1] == keys[2] == keys[5] == keys[6] != keys[3] == keys[4]
    for step, (data, ops, _, _) in enumerate(expected):
        nodes = view.nodes(step)
        assert np.array_equal(nodes["value"].to_numpy(), np.array(data))
        assert len(nodes) == len(ops)


def test_a_graph_with_a_tie_is_never_guided():
    """``x1 * x2`` of two inputs: their keys are equal, so the order is by value, which
    changes from step to step. No guide is made of it; every step takes the full walk."""
    rng = random.Random(3)
    graphs = GraphCapture({})
    for step in range(8):
        x1, x2 = V(rng.uniform(-1, 1)), V(rng.uniform(-1, 1))
        root = V(x1.data * x2.data, (x1, x2), "*")
        shuffled_sets(root, rng)
        snap = capture_foreign(graphs, root, step)
        assert snap.data.tolist() == [v.data for v in Walk(root, {}).nodes]
        assert snap.data[:2].tolist() == sorted([x1.data, x2.data])  # the tie rule: by value
    assert graphs.__dict__["foreign_guide"] is None


def _random_graph(seed: int, mutate: tuple[int, str] | None = None):
    """A random DAG of ``V`` nodes built by a fixed recipe (``seed``): sets and tuples,
    shared operands, ``a + a``, watched parameters, op strings known and unknown.
    Values are new at every call. ``mutate``: (recipe step, what) changes that step's
    op string, first operand or kind of container."""
    recipe = random.Random(seed)
    values = random.Random()
    params = _random_graph.params
    nodes = [*params, *(V(values.uniform(-1, 1)) for _ in range(3))]
    for step in range(recipe.randint(4, 30)):
        op = recipe.choice(["+", "*", "tanh", "ReLU", "**2", "f", "g"])
        arity = 1 if op in ("tanh", "ReLU", "**2") else 2
        picked = [recipe.choice(nodes[-8:] if recipe.random() < 0.7 else nodes)]
        if arity == 2:
            picked.append(picked[0] if recipe.random() < 0.1 else recipe.choice(nodes))
        in_tuple = recipe.random() < 0.3
        if mutate is not None and step == mutate[0]:
            if mutate[1] == "op":
                op = "-"
            elif mutate[1] == "operand":
                picked[0] = nodes[(nodes.index(picked[0]) + 1) % len(nodes)]
            else:
                in_tuple = not in_tuple
        nodes.append(V(values.uniform(-1, 1), picked, op, tuple_prev=in_tuple))
    root = nodes[-1]
    for v in nodes[:-1]:  # every node reaches the root, so the graph is all of them
        root = V(values.uniform(-1, 1), (root, v), "+")
    return root


_random_graph.params = [V(0.5), V(-0.5)]


@pytest.mark.parametrize("seed", range(60))
def test_random_graphs_are_numbered_as_the_full_walk_numbers_them(seed):
    """Whatever the guide does (follow, refuse), each step records the full walk's numbers."""
    index = {id(p): i for i, p in enumerate(_random_graph.params)}
    graphs = GraphCapture(index)
    rng = random.Random(seed)
    for step in range(6):
        what = rng.choice(["op", "operand", "container"])
        root = _random_graph(seed, (rng.randrange(30), what) if step in (3, 4) else None)
        shuffled_sets(root, rng)
        full = Walk(root, index)
        snap = capture_foreign(graphs, root, step)
        assert snap.data.tolist() == [float(v.data) for v in full.nodes]
        assert (snap.shape.ops, snap.shape.a, snap.shape.b) == (full.ops, full.a, full.b)
