"""The compiled guided walk (``tracer/recording/_guidedwalk.c``) on graphs a user's own
engine may build: odd parent containers, attributes that raise, values that are not
numbers. Whatever it meets, it must do what the Python walk does (number the graph the
same, or hand the step to the full walk, which names the problem), hold no reference
it did not give back, and refuse a plan that does not hold together."""

from __future__ import annotations

import sys

import pytest
from gradtrace.tracer.errors import InvalidArgument
from gradtrace.tracer.recording import foreignguide
from gradtrace.tracer.recording.capture import GraphCapture
from gradtrace.tracer.recording.foreign import _OPS, Walk, capture_foreign
from gradtrace.tracer.recording.foreignguide import Guide

pytestmark = pytest.mark.usefixtures("compiled_walk")  # tests/tracer/conftest.py


class V:
    def __init__(self, data, children=(), op="", container=set):
        self.data, self.grad, self._op = data, 0.0, op
        self._prev = container(children)

    def __repr__(self) -> str:  # the same in every error message, wherever it lies
        return f"V({self._op!r})"


class Fresh:
    """A ``_prev`` that makes new parent objects at every iteration."""

    def __init__(self, children):
        self.children = list(children)

    def __len__(self):
        return len(self.children)

    def __iter__(self):
        return iter([V(c.data) for c in self.children])


class Loud(V):
    """A node whose ``data`` raises once ``loud`` is set (after the guide is made)."""

    loud = False

    def __getattribute__(self, name):
        if name == "data" and type(self).loud:
            raise RuntimeError("no data today")
        return object.__getattribute__(self, name)


def graph(container=set, leaf=V, data=1.0):
    """``(x * w + b) * x``: sets of two (op strings differ; the placed ``x``), a unary
    ``tanh`` over a set of one, and ``w * w`` (``set((w, w))``, one parent, two edges)."""
    x, w, b = leaf(data), V(0.5), V(-1.0)
    xw = V(0.5, (x, w), "*", container)
    s = V(-0.5, (xw, b), "+", container)
    t = V(0.1, (s,), "tanh", container)
    ww = V(0.25, (w, w), "*", container)
    root = V(0.0, (V(0.0, (t, x), "*", container), ww), "+", container)
    return root, {id(w): 0, id(b): 1}


def three_steps(make, walk, monkeypatch) -> list:
    """What capture_foreign makes of ``make(step)`` at steps 0-2 with the guided ``walk``
    (the compiled module, or None: the Python walk): the guide made at step 1 (the shape
    seen twice) guides step 2, where the odd graphs are odd."""
    monkeypatch.setattr(foreignguide, "_guidedwalk", walk)
    graphs = GraphCapture({})
    seen = []
    for step in range(3):
        root, index = make(step)
        graphs.param_index = index
        try:
            snap = capture_foreign(graphs, root, step)
            seen.append((snap.data.tolist(), snap.grad.tolist(), snap.shape.ops, snap.shape.a))
        except InvalidArgument as e:
            seen.append(str(e))
        seen.append(graphs.__dict__.get("foreign_guide") is not None)
    return seen


def odd(**kw):
    """A plain graph at steps 0 and 1, ``graph(**kw)`` at step 2."""

    def make(step: int):
        return graph(**kw) if step == 2 else graph()

    make.__name__ = ",".join(f"{k}={getattr(v, '__name__', v)!s:.12}" for k, v in kw.items())
    return make


def fresh_always(step: int):
    return graph(container=Fresh)


@pytest.mark.parametrize(
    "make",
    [
        odd(container=frozenset),
        odd(container=list),
        odd(container=tuple),
        odd(container=Fresh),
        fresh_always,  # never readable: no guide is ever made
        odd(leaf=lambda d: V(d, container=dict)),  # an empty dict for a leaf's parents
        odd(data=10**400),  # an int no float holds
        odd(data="1.5"),
        odd(data=True),
    ],
    ids=lambda make: make.__name__,
)
def test_odd_graphs_are_recorded_as_the_python_walk_records_them(make, monkeypatch, compiled_walk):
    assert three_steps(make, compiled_walk, monkeypatch) == three_steps(make, None, monkeypatch)


def test_a_prev_that_gives_new_parents_each_time_is_named(monkeypatch, compiled_walk):
    error = three_steps(fresh_always, compiled_walk, monkeypatch)[0]
    assert "cannot be read (ValueError: 'a ._prev gave other parents when read again')" in error


def test_the_compiled_walk_follows_a_plain_graph(monkeypatch, compiled_walk):
    # The cases above must not all pass because neither walk ever ran: here it does.
    assert three_steps(lambda step: graph(), compiled_walk, monkeypatch)[-1] is True
    root, index = graph()
    guide = Guide.build(Walk(root, index), index, _OPS.get)
    again, index2 = graph()
    nodes, data, grad, order = guide.number(again, index2)
    assert order is None and nodes == Walk(again, index2).nodes
    assert list(memoryview(data).cast("d")) == [float(v.data) for v in nodes]
    assert list(memoryview(grad).cast("d")) == [float(v.grad) for v in nodes]


def test_an_attribute_that_raises_mid_walk_sends_the_step_to_the_full_walk():
    def make():
        x, w = Loud(2.0), V(3.0)
        return V(6.0, (V(6.0, (x, w), "*"), w), "+"), {id(w): 0}

    graphs = GraphCapture({})
    for step in range(2):
        root, graphs.param_index = make()
        capture_foreign(graphs, root, step)
    guide = graphs.__dict__["foreign_guide"]
    assert guide is not None
    root, index = make()
    Loud.loud = True
    try:
        assert guide.number(root, index) is None
        graphs.param_index = index
        # The user's own error, from their own code: it reaches them as it was raised.
        with pytest.raises(RuntimeError, match="no data today"):
            capture_foreign(graphs, root, 2)
    finally:
        Loud.loud = False


def test_no_reference_is_kept_whatever_the_walk_ends_in(compiled_walk):
    root, index = graph()
    guide = Guide.build(Walk(root, index), index, _OPS.get)
    again, index2 = graph()
    nodes = Walk(again, index2).nodes
    refused = V(0.0, (again, again), "-")  # another op string at the root
    before = [sys.getrefcount(v) for v in nodes]
    broken = {k: object() for k in index2}  # a parameter's index that is not an int

    for _ in range(50):
        assert guide.number(again, index2) is not None  # numbered
        assert guide.number(refused, index2) is None  # not the plan's graph
        with pytest.raises(TypeError):  # an error half-way down, at the first parameter
            compiled_walk.walk(again, guide.compiled, broken, None)
    assert [sys.getrefcount(v) for v in nodes] == before


def test_a_plan_that_does_not_hold_together_is_refused(compiled_walk):
    root, index = graph()
    guide = Guide.build(Walk(root, index), index, _OPS.get)
    a, b, params, lens, tupleish, ops = guide.compiled
    with pytest.raises(ValueError, match="differ in length"):
        compiled_walk.walk(root, (a, b, params, lens[:-1], tupleish, ops), index, None)
    # The root its own first operand: the walk would go up, not down.
    backwards = bytearray(a)
    backwards[-4:] = (len(lens) - 1).to_bytes(4, sys.byteorder)
    with pytest.raises(ValueError, match="comes after its node"):
        compiled_walk.walk(root, (bytes(backwards), b, params, lens, tupleish, ops), index, None)
