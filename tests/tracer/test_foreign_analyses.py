"""The user's own micrograd, recorded: AdamW state on our Values, the README section, and
the analyses (verify, why, diff, health) on runs of another engine."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from helpers.lecture import XS, YS, LValue
from helpers.trace import bits

from gradtrace import tracer

mg_nn = pytest.importorskip("micrograd.nn")


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
    assert result.skipped_nodes == "gradients (added in the recording engine's own order)"
    odd = _micrograd_run(db_url, "odd", odd=True).verify()
    assert odd.ok and odd.skipped_nodes.endswith("ops gradtrace cannot re-execute: 'halve'")
    assert odd.nodes == 3 * len(view.nodes(0))  # the three `halve` values are not checked


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
    assert "`gelu`" in origin.story and "cannot judge" in origin.story


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
