"""The steady-state walk of a foreign graph (``Walk._guided``): numbered by the last
step's graph in one walk, it must number every node exactly as the full key walk does,
whatever order the parent sets iterate in."""

from __future__ import annotations

import random

import pytest
from gradtrace.engine import make_moons
from gradtrace.tracer.recording.capture import Shape
from gradtrace.tracer.recording.foreign import _OPS, Guide, Walk
from helpers.lecture import LMLP, XS, YS

micrograd = pytest.importorskip("micrograd")
from micrograd import nn as mg_nn  # noqa: E402
from test_foreign import moons_loss, shuffled_sets  # noqa: E402


def _shape(walk: Walk) -> Shape:
    leaves = [i for i, op in enumerate(walk.ops) if not op]
    shape = Shape(walk.ops, walk.a, walk.b, leaves, [walk.params[i] for i in leaves], 0)
    shape.exponents = walk.exponents
    return shape


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


@pytest.mark.parametrize("kind", ["micrograd", "lecture"])
def test_the_guided_walk_numbers_every_node_as_the_key_walk_does(kind):
    guide = None
    guided = 0
    for loss, index in _graphs(kind, 4):
        full = Walk(loss, index)
        walk = Walk(loss, index, None, guide)
        guided += walk.guided
        assert [id(v) for v in walk.nodes] == [id(v) for v in full.nodes]
        assert (walk.ops, walk.a, walk.b, walk.params) == (full.ops, full.a, full.b, full.params)
        assert walk.key == full.key
        guide = Guide(full, _shape(full), index, _OPS.get)
    # Every step after the first follows its guide: the lecture's w0*x0 + w1*x1 and
    # micrograd's data_loss + reg_loss are told apart a few levels up.
    assert guided == 3


def test_a_changed_graph_is_not_taken_for_the_guide():
    graphs = _graphs("micrograd", 2)
    first, index = next(graphs)
    walk = Walk(first, index)
    guide = Guide(walk, _shape(walk), index, _OPS.get)
    second, _ = next(graphs)
    bigger = second * second  # one node more on top: not the guide's graph
    walk = Walk(bigger, index, None, guide)
    assert not walk.guided and len(walk.nodes) == len(guide.raw) + 1
