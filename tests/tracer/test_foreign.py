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
from pathlib import Path

import numpy as np
import pytest
from gradtrace.engine import make_moons
from helpers.trace import bits

from gradtrace import tracer

micrograd = pytest.importorskip("micrograd")
from micrograd import nn as mg_nn  # noqa: E402
from micrograd.engine import Value as MGValue  # noqa: E402


# -- the lecture's engine, as the notes build it ---------------------------------------------
class LValue:
    def __init__(self, data, _children=(), _op="", label=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op
        self.label = label

    def __add__(self, other):
        other = other if isinstance(other, LValue) else LValue(other)
        out = LValue(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += 1.0 * out.grad
            other.grad += 1.0 * out.grad

        out._backward = _backward
        return out

    def __radd__(self, other):
        return self + other

    def __mul__(self, other):
        other = other if isinstance(other, LValue) else LValue(other)
        out = LValue(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __rmul__(self, other):
        return self * other

    def __pow__(self, k):
        out = LValue(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other):
        return self * other**-1

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def exp(self):
        out = LValue(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        x = self.data
        t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
        out = LValue(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t**2) * out.grad

        out._backward = _backward
        return out

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()


class LNeuron:
    def __init__(self, nin, rng):
        self.w = [LValue(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = LValue(rng.uniform(-1, 1))

    def __call__(self, x):
        return sum((wi * xi for wi, xi in zip(self.w, x)), self.b).tanh()

    def parameters(self):
        return [*self.w, self.b]


class LLayer:
    def __init__(self, nin, nout, rng):
        self.neurons = [LNeuron(nin, rng) for _ in range(nout)]

    def __call__(self, x):
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class LMLP:
    def __init__(self, nin, nouts, seed=0):
        rng = random.Random(seed)
        sz = [nin, *nouts]
        self.layers = [LLayer(sz[i], sz[i + 1], rng) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def graph_nodes(root) -> list:
    """Every node of a foreign graph, by identity, however its parents are held."""
    seen, stack, out = set(), [root], []
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
        stack.extend(v._prev)
    return out


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
import importlib.util, sys
sys.path.insert(0, {tests!r})
spec = importlib.util.spec_from_file_location("lecture", {here!r})
lecture = importlib.util.module_from_spec(spec); spec.loader.exec_module(lecture)
LMLP, XS, YS = lecture.LMLP, lecture.XS, lecture.YS
from gradtrace import tracer
model = LMLP(3, [4, 4, 1], seed=3)
junk = [object() for _ in range({junk})]  # other addresses than the parent process's
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
        code = SCRIPT.format(tests=tests, here=__file__, junk=junk, name=name, db=db)
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


class CourseAdamW:
    """The course's AdamW: its moments live on the parameters (``p.m``, ``p.v``)."""

    def __init__(self, params, lr=0.05, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-4):
        self.params, self.lr, self.eps, self.wd = params, lr, eps, weight_decay
        self.b1, self.b2 = betas
        self.t = 0
        for p in self.params:
            p.m = 0.0
            p.v = 0.0

    def step(self):
        self.t += 1
        b1, b2 = self.b1, self.b2
        for p in self.params:
            p.m = b1 * p.m + (1 - b1) * p.grad
            p.v = b2 * p.v + (1 - b2) * p.grad**2
            m_hat = p.m / (1 - b1**self.t)
            v_hat = p.v / (1 - b2**self.t)
            p.data -= self.lr * (m_hat / (v_hat**0.5 + self.eps) + self.wd * p.data)


def test_a_course_adamw_keeping_state_on_our_values_is_recorded(db_url):
    from gradtrace.engine import MLP as OurMLP
    from gradtrace.engine import cross_entropy

    rng = random.Random(5)
    points = [([rng.gauss(c, 0.3), rng.gauss(-c, 0.3)], k) for k, c in enumerate((-1, 0, 1))]
    points = [(x, k) for x, k in points for _ in range(3)]
    model = OurMLP(2, [6, 3], seed=2)
    opt = CourseAdamW(model.parameters())
    seen = []
    with tracer.record("course", db=db_url) as run:
        run.watch(model)
        for _ in range(4):
            # The engine's MLP puts relu on every layer; the course's logits are linear,
            # so the last layer's pre-activations are read off its neurons.
            losses = []
            for x, k in points:
                h = model.layers[0](x)
                out = model.layers[1].neurons
                logits = [sum((w * hi for w, hi in zip(n.w, h)), n.b) for n in out]
                losses.append(cross_entropy(logits, k))
            loss = sum(losses) * (1.0 / len(losses))
            model.zero_grad()
            loss.backward()
            before = [(p.data, p.grad) for p in model.parameters()]
            run.log(loss)
            opt.step()
            seen.append((loss.data, before, [p.data for p in model.parameters()]))
    assert any(p.m != 0.0 for p in model.parameters())  # the state lives on our Values
    view = tracer.connect(db_url).run("course")
    assert bits(view.metrics()["loss"]).tolist() == bits([s[0] for s in seen]).tolist()
    assert seen[-1][0] < seen[0][0]
    updates = view.updates()
    for k, (_, before, after) in enumerate(seen):
        u = updates[updates["step"] == k].sort_values("param")
        assert bits(u["value_before"]).tolist() == bits([b for b, _ in before]).tolist()
        assert bits(u["grad"]).tolist() == bits([g for _, g in before]).tolist()
        assert bits(u["value_after"]).tolist() == bits(after).tolist()
    ops = set(view.nodes(0)["op"])
    assert {"exp", "log", "-"} <= ops


def test_the_readme_section_runs_as_written(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("### Record the micrograd you wrote", 1)[1].split("\n### ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    store = tracer.connect(tmp_path / "runs.db")
    mg, lecture = store.run("micrograd"), store.run("lecture")
    assert len(mg.metrics()) == 20 and mg.parameters()["name"][0] == "layers.0.neurons.0.w.0"
    assert mg.metrics()["loss"].iloc[-1] < mg.metrics()["loss"].iloc[0]
    nodes = lecture.nodes(9)
    assert set(nodes["label"]) >= {"w1", "w2", "b", "x1", "x2"}
    assert nodes["op"].iloc[-1] == "tanh" and lecture.steps()["graph_key"].nunique() == 1


# -- the analyses on foreign runs ------------------------------------------------------------


def _micrograd_run(db_url: str, name: str, steps: int = 3, lr: float = 0.05, odd: bool = False):
    random.seed(11)
    model = mg_nn.MLP(3, [4, 1])
    with tracer.record(name, db=db_url) as run:
        run.watch(model)
        for _ in range(steps):
            loss = sum((model(x) - y) ** 2 for x, y in zip(XS, YS))
            model.zero_grad()
            loss.backward()
            if odd:  # an op of the user's own, unknown to gradtrace, on top
                loss = LValue(loss.data * 0.5, (loss,), "halve")
            run.log(loss)
            for p in model.parameters():
                p.data -= lr * p.grad
    return tracer.connect(db_url).run(name)


def test_verify_re_executes_a_foreign_runs_known_ops_and_names_the_rest(db_url):
    view = _micrograd_run(db_url, "plain")
    result = view.verify()
    assert result.ok and result.steps == 3 and result.nodes == 3 * len(view.nodes(0))
    assert result.unchecked == "gradients (added in the recording engine's own order)"
    odd = _micrograd_run(db_url, "odd", odd=True).verify()
    assert odd.ok and odd.unchecked.endswith("ops gradtrace cannot re-execute: halve")
    assert odd.nodes == 3 * len(view.nodes(0)) + 3


def test_verify_finds_a_wrong_value_in_a_foreign_run(db_url):
    import sqlalchemy as sa
    from gradtrace.tracer.storage.codec import decode_floats, encode_floats
    from gradtrace.tracer.storage.models import Trace

    view = _micrograd_run(db_url, "moved")
    node = int(np.flatnonzero(view.nodes(1)["op"].to_numpy(dtype=object) == "*")[0])
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        blob, codec = conn.execute(
            sa.select(Trace.data, Trace.codec).where(Trace.run_key == view.key, Trace.step == 1)
        ).one()
        values = decode_floats(blob, codec).copy()
        values[node] = np.nextafter(values[node], np.inf)  # one bit off
        conn.execute(
            sa.update(Trace)
            .where(Trace.run_key == view.key, Trace.step == 1)
            .values(data=encode_floats(values, codec))
        )
    engine.dispose()
    m = tracer.connect(db_url).run("moved").verify().mismatch
    assert m is not None and (m.step, m.node, m.op, m.what) == (1, node, "*", "value")


def test_why_names_an_unknown_op_it_cannot_judge(db_url):
    x = LValue(2.0, label="x")
    y = LValue(3.0, label="y")
    s = x * y
    out = LValue(0.7, (s,), "gelu")  # the user's op: its backward sent NaN to s
    out.grad, s.grad = 1.0, float("nan")
    x.grad = y.grad = float("nan")
    with tracer.record("gelu", db=db_url) as run, pytest.warns(RuntimeWarning, match="gelu"):
        run.log(out)
    origin = tracer.connect(db_url).run("gelu").first_nonfinite()
    assert (origin.kind, origin.node, origin.op) == ("backward", 3, "gelu")
    assert "an op gradtrace cannot judge" in origin.story


def test_diff_and_health_read_foreign_runs(db_url):
    from gradtrace.tracer.analysis import health

    a = _micrograd_run(db_url, "a", lr=0.05)
    _micrograd_run(db_url, "b", lr=0.06)
    d = tracer.connect(db_url).diff("a", "b")
    assert d.same_parameters and d.same_shapes and d.common_steps == 3
    assert d.first_param_step == 1  # the same weights at step 0, then the updates differ
    # Step 0's values are the same; its gradients may not be, to the last bit: micrograd
    # sums them in set order, which differs from one run to the next.
    assert d.node_value is None or d.node_value.step >= 1
    g = d.node_grad
    assert g is None or g.step >= 1 or math.isclose(g.a, g.b, rel_tol=1e-12)
    layers = health.layers(a)  # micrograd's last layer is linear: one ReLU layer of 4
    assert set(zip(layers["layer"], layers["activation"], layers["neurons"])) == {(0, "relu", 4)}
