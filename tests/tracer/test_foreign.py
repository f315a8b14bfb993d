"""Recording the micrograd the user wrote: the lecture's own Value class and micrograd 0.1.0.

The lecture's class is written here as the notes build it (parents in a ``set``,
a ``_backward`` closure per node, ``label``, tanh through ``exp``); micrograd is
the package as installed. Every number gradtrace stores is compared with what
the user's own engine computed, bit for bit.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from gradtrace.engine import make_moons
from helpers.lecture import LMLP, XS, YS, LValue, graph_nodes
from helpers.trace import bits

from gradtrace import tracer

micrograd = pytest.importorskip("micrograd")
from micrograd import nn as mg_nn  # noqa: E402
from micrograd.engine import Value as MGValue  # noqa: E402


def multiset(values) -> Counter:
    return Counter(bits([float(x) for x in values]).tolist())


def lecture_loop(run, steps: int = 6, lr: float = 0.05):
    """The notes' 4-sample loop, recorded; returns what the loop itself saw each step."""
    model = LMLP(3, [4, 4, 1])
    if run is not None:
        run.watch(model)
    seen = []
    for _ in range(steps):
        ypred = [model(x) for x in XS]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(YS, ypred))
        for p in model.parameters():
            p.grad = 0.0
        loss.backward()
        nodes = graph_nodes(loss)
        s = {
            "loss": loss.data,
            "before": [(p.data, p.grad) for p in model.parameters()],
            "values": multiset(v.data for v in nodes),  # before the update changes them
            "grads": multiset(v.grad for v in nodes),
            "n": len(nodes),
        }
        if run is not None:
            run.log(loss)
        for p in model.parameters():
            p.data += -lr * p.grad
        seen.append({**s, "after": [p.data for p in model.parameters()]})
    return model, seen


def test_the_lectures_value_class_is_recorded_bit_for_bit(db_url):
    with tracer.record("lecture", db=db_url) as run:
        _, seen = lecture_loop(run)
    view = tracer.connect(db_url).run("lecture")
    loss = view.metrics()["loss"].to_numpy()
    assert bits(loss).tolist() == bits([s["loss"] for s in seen]).tolist()
    params = view.parameters()
    assert params["name"].tolist()[:5] == [
        "layers.0.neurons.0.w.0",
        "layers.0.neurons.0.w.1",
        "layers.0.neurons.0.w.2",
        "layers.0.neurons.0.b",
        "layers.0.neurons.1.w.0",
    ]
    assert params["kind"].tolist()[:4] == ["weight", "weight", "weight", "bias"]
    assert params["layer"].tolist()[-1] == 2 and params["input"].tolist()[-2] == 3
    updates = view.updates()
    for k, s in enumerate(seen):
        u = updates[updates["step"] == k].sort_values("param")
        assert bits(u["value_before"]).tolist() == bits([b for b, _ in s["before"]]).tolist()
        assert bits(u["grad"]).tolist() == bits([g for _, g in s["before"]]).tolist()
        assert bits(u["value_after"]).tolist() == bits(s["after"]).tolist()
        nodes = view.nodes(k)
        assert len(nodes) == s["n"]
        assert multiset(nodes["value"]) == s["values"]
        assert multiset(nodes["grad"]) == s["grads"]
    steps = view.steps()
    assert steps["graph_key"].nunique() == 1  # the same shape at every step
    assert set(view.nodes(0)["op"]) == {"", "+", "*", "**", "tanh"}
    assert set(view.nodes(0)["arg"].dropna()) == {2.0}  # the exponent parsed from "**2"


def shuffled_sets(root, rng: random.Random) -> None:
    """Give every set of parents an iteration order of its own, chosen by ``rng``."""

    class Shuffled(set):
        def __iter__(self):
            items = list(set.__iter__(self))
            rng.shuffle(items)
            return iter(items)

    for v in graph_nodes(root):
        if isinstance(v._prev, set):
            v._prev = Shuffled(v._prev)


def test_shuffled_parent_sets_give_the_same_recorded_shape(db_url):
    model = LMLP(3, [4, 4, 1], seed=3)
    rng = random.Random(0)
    with tracer.record("shuffled", db=db_url) as run:
        run.watch(model)
        for _ in range(6):
            loss = sum((model(x) - y) ** 2 for x, y in zip(XS, YS))
            loss.backward()
            shuffled_sets(loss, rng)
            run.log(loss)  # no update: every step is the same graph with the same numbers
    view = tracer.connect(db_url).run("shuffled")
    assert view.steps()["graph_key"].nunique() == 1
    first = view.nodes(0)
    for k in range(1, 6):
        nodes = view.nodes(k)
        assert nodes["op"].tolist() == first["op"].tolist()
        assert bits(nodes["value"]).tolist() == bits(first["value"]).tolist()


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from helpers.lecture import LMLP, XS, YS
from gradtrace import tracer
model = LMLP(3, [4, 4, 1], seed=3)
junk = [object() for _ in range({junk})]  # other addresses than the other process's
with tracer.record({name!r}, db={db!r}) as run:
    run.watch(model)
    loss = sum((model(x) - y) ** 2 for x, y in zip(XS, YS))
    loss.backward()
    run.log(loss)
"""


def test_the_shape_is_the_same_in_every_process(tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name, seed, junk in (("p1", "1", 10), ("p2", "2", 5000)):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        code = SCRIPT.format(tests=tests, junk=junk, name=name, db=db)
        subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    store = tracer.connect(db)
    one, two = store.run("p1").nodes(0), store.run("p2").nodes(0)
    assert one["op"].tolist() == two["op"].tolist()
    assert one["parents"].tolist() == two["parents"].tolist()
    assert bits(one["value"]).tolist() == bits(two["value"]).tolist()
    # The lecture's backward adds a node's gradient contributions in its sets' order,
    # which differs between the processes: the last bits may too, and are recorded so.
    np.testing.assert_allclose(one["grad"], two["grad"], rtol=1e-12, atol=1e-15)


# -- micrograd 0.1.0 -------------------------------------------------------------------------


def moons_loss(model, X, y):
    """micrograd's demo loss: SVM max-margin plus L2, as its notebook writes it."""
    inputs = [list(map(MGValue, row)) for row in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    acc = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
    return data_loss + reg_loss, acc


def test_micrograd_moons_demo_is_recorded_bit_for_bit(db_url):
    X, y = make_moons(24, noise=0.1, seed=1)
    random.seed(1337)
    model = mg_nn.MLP(2, [8, 8, 1])
    seen = []
    steps = 4
    with tracer.record("moons", db=db_url) as run:
        run.watch(model)
        for k in range(steps):
            loss, acc = moons_loss(model, X, y)
            model.zero_grad()
            loss.backward()
            nodes = graph_nodes(loss)
            before = [(p.data, p.grad) for p in model.parameters()]
            values, grads = multiset(v.data for v in nodes), multiset(v.grad for v in nodes)
            run.log(loss, acc=acc)
            lr = 1.0 - 0.9 * k / 100
            for p in model.parameters():
                p.data -= lr * p.grad
            after = [p.data for p in model.parameters()]
            seen.append((loss.data, before, after, values, grads, len(nodes)))
    view = tracer.connect(db_url).run("moons")
    assert view.parameters()["name"].tolist()[-1] == "layers.2.neurons.0.b"
    assert bits(view.metrics()["loss"]).tolist() == bits([s[0] for s in seen]).tolist()
    updates = view.updates()
    for k, (_, before, after, values, grads, n) in enumerate(seen):
        u = updates[updates["step"] == k].sort_values("param")
        assert bits(u["value_before"]).tolist() == bits([b for b, _ in before]).tolist()
        assert bits(u["grad"]).tolist() == bits([g for _, g in before]).tolist()
        assert bits(u["value_after"]).tolist() == bits(after).tolist()
        nodes = view.nodes(k)
        assert len(nodes) == n
        assert multiset(nodes["value"]) == values
        assert multiset(nodes["grad"]) == grads
    assert view.steps()["graph_key"].nunique() == 1
    ops = set(view.nodes(0)["op"])
    assert {"relu", "*", "+"} <= ops and "ReLU" not in ops


def test_a_micrograd_run_driven_to_overflow_names_its_origin(db_url):
    X, y = make_moons(12, noise=0.1, seed=2)
    random.seed(7)
    model = mg_nn.MLP(2, [4, 1])
    with tracer.record("overflow", db=db_url) as run, pytest.warns(RuntimeWarning):
        run.watch(model)
        for _ in range(5):
            loss, _acc = moons_loss(model, X, y)
            model.zero_grad()
            loss.backward()
            run.log(loss)
            for p in model.parameters():  # a learning rate gone wrong: 1e80 times per step
                p.data *= 1e80
    # Step 1's weights are up to 1e80 and its products finite; step 2's overflow.
    origin = tracer.connect(db_url).run("overflow").first_nonfinite()
    assert origin is not None and origin.step == 2 and origin.kind == "forward"
    assert origin.op == "*" and math.isinf(origin.value)
    assert origin.parents and all(math.isfinite(p.value) for p in origin.parents)


def test_int_data_is_stored_as_the_exact_float(db_url):
    x = MGValue(-3)  # micrograd keeps ints: relu of a negative gives 0, grads start at 0
    out = (x * 2).relu() + MGValue(5)
    out.backward()
    with tracer.record("ints", db=db_url) as run:
        run.log(out)
    nodes = tracer.connect(db_url).run("ints").nodes(0)
    assert sorted(nodes["value"].tolist()) == [-6.0, -3.0, 0.0, 2.0, 5.0, 5.0]
    assert nodes["value"].dtype == np.float64


# -- unknown ops, names, and the engine's own Values -----------------------------------------


def test_an_unknown_op_is_recorded_as_written(db_url):
    a, b = LValue(2.0, label="a"), LValue(3.0, label="b")
    odd = LValue(7.5, (a, b), "my op %")  # an op gradtrace does not know, a space and a %
    odd.grad = 1.0
    a.grad, b.grad = 0.25, -4.0
    soft = LValue(0.9, [odd], "softmax")
    soft.grad = 1.0
    with tracer.record("unknown", db=db_url) as run:
        run.log(soft)
    nodes = tracer.connect(db_url).run("unknown").nodes(0)
    assert nodes["op"].tolist() == ["", "", "my op %", "softmax"]
    assert nodes["label"].tolist()[:2] == ["a", "b"]
    assert nodes["value"].tolist() == [2.0, 3.0, 7.5, 0.9]
    assert nodes["grad"].tolist() == [0.25, -4.0, 1.0, 1.0]
    assert nodes["parents"].tolist()[2:] == [(0, 1), (2,)]


class Owner:
    """A model whose attributes do not hold its parameters: names fall back to p0.."""

    def __init__(self):
        self._hidden = [LValue(1.0), LValue(2.0)]

    def parameters(self):
        return self._hidden


def test_names_fall_back_to_positions_and_duplicates_are_refused(db_url):
    with tracer.record("fallback", db=db_url) as run:
        run.watch(Owner())
    assert tracer.connect(db_url).run("fallback").parameters()["name"].tolist() == ["p0", "p1"]
    p = LValue(1.0)
    with tracer.record("dup", db=db_url) as run, pytest.raises(tracer.GradtraceError) as e:
        run.watch([p, LValue(2.0), p])
    assert "same parameter at 0 and 2" in str(e.value)
