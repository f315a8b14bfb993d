"""First divergence between two runs: Store.diff and `gradtrace diff`, on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from gradtrace.engine import Value
from gradtrace.tracer.analysis.diff import first_differing_step, probe_then_bisect
from gradtrace.tracer.analysis.difftypes import equal_mask, first_unequal
from helpers.compare import record_run
from helpers.trace import NAN_PAYLOAD, fbits

from gradtrace import tracer
from gradtrace.cli.main import cli


def test_one_script_one_seed_is_identical_through_the_last_step(db_url):
    a = record_run(db_url, "same", steps=30)
    b = record_run(db_url, "same", steps=30)
    with tracer.connect(db_url, readonly=True) as store:
        d = store.diff(a, b)
    assert d.identical
    assert d.same_shapes and d.same_parameters
    assert d.common_steps == 30 and d.last_common_step == 29
    assert d.first_param_step is None and d.first_trace_step is None
    assert d.differences == []
    loss = next(m for m in d.metrics if m.name == "loss")
    assert loss.first_diff_step is None and loss.final_a == loss.final_b
    assert loss.best_step_a == loss.best_step_b
    out = CliRunner().invoke(cli, ["diff", a, b, "--db", db_url])
    assert out.exit_code == 0, out.output
    assert "identical through step 29 (30 common steps, bit-exact)" in out.output


def test_lr_changed_from_step_40_parts_at_41s_parameters_and_40s_update(db_url):
    a = record_run(db_url, "base", steps=60)
    b = record_run(db_url, "lr2", steps=60, lr_from=(40, 0.2))
    with tracer.connect(db_url, readonly=True) as store:
        d = store.diff(a, b)
        params_b = store.run(b).values(steps=41).to_numpy()[0]
        grads = store.run(a).gradients(steps=40).to_numpy()[0]
    assert not d.identical and d.same_shapes
    assert d.first_param_step == 41
    assert d.param.step == 41 and d.param.b == params_b[d.param.param]
    assert d.update.step == 40
    assert (d.update.lr_a, d.update.lr_b) == (0.1, 0.2)
    # The first parameter with a gradient moves differently; it is the one named.
    assert d.update.param == int(np.flatnonzero(grads)[0]) == d.param.param
    # Step 40's forward still agreed: the node trace parts at 41 too.
    assert d.first_trace_step == 41
    assert d.node_value is not None and d.node_value.step == 41
    assert [s.key for s in d.differences] == ["config.lr_from"]
    loss = next(m for m in d.metrics if m.name == "loss")
    assert loss.first_diff_step == 41
    out = CliRunner().invoke(cli, ["diff", a, b, "--db", db_url])
    assert out.exit_code == 0, out.output
    assert "parameters first differ at step 41" in out.output
    assert "step 40's update: lr 0.1 vs 0.2" in out.output


def test_one_ulp_at_step_10_is_found_at_step_10_and_its_leaf(db_url):
    a = record_run(db_url, "clean", steps=20)
    b = record_run(db_url, "ulp", steps=20, perturb=(10, 5))
    with tracer.connect(db_url, readonly=True) as store:
        d = store.diff(a, b)
        run_a = store.run(a)
        graph = run_a.graph(10)
        name5 = run_a.parameters()["name"][5]
    assert d.first_param_step == 10
    assert d.param.param == 5 and d.param.name == name5
    assert fbits(d.param.b) - fbits(d.param.a) == 1  # exactly one ulp apart
    # The recorder reads a step's "after" values at the next log, so the nudge shows
    # as step 9's update of parameter 5, with the same learning rate.
    assert d.update.step == 9 and d.update.param == 5 and d.update.lr_a == d.update.lr_b
    assert fbits(d.update.after_b) - fbits(d.update.after_a) == 1
    assert d.first_trace_step == 10
    leaf = int(np.flatnonzero(graph["param"].fillna(-1).to_numpy() == 5)[0])
    assert d.node_value.node == leaf and d.node_value.param == name5
    assert d.node_value.op == ""
    # The first gradient to differ sits somewhere else: not the leaf itself.
    assert d.node_grad is not None and d.node_grad.step == 10
    # A tolerance wider than the ulp (and its consequences) sees no difference.
    with tracer.connect(db_url, readonly=True) as store:
        loose = store.diff(a, b, rtol=1e-6)
    assert loose.first_param_step is None and loose.first_trace_step is None


def test_settings_diff_names_seed_and_shapes(db_url):
    a = record_run(db_url, "s1", steps=3, seed=0)
    b = record_run(db_url, "s2", steps=3, seed=1)
    with tracer.connect(db_url, readonly=True) as store:
        d = store.diff(a, b)
    assert {s.key: (s.a, s.b) for s in d.differences} == {"seed": (0, 1), "model.seed": (0, 1)}
    assert d.first_param_step == 0 and d.update is None
    assert d.same_shapes  # one program, one graph shape


def test_a_different_graph_names_the_first_differing_node(db_url):
    a = record_run(db_url, "p20", steps=2)
    b = record_run(db_url, "p19", steps=2, points=19)
    c = record_run(db_url, "params-only", steps=2, capture="params")
    with tracer.connect(db_url, readonly=True) as store:
        d = store.diff(a, b)
        ga, gb = store.run(a).graph(0), store.run(b).graph(0)
        only_a = store.diff(a, c)
        with pytest.raises(tracer.ConfigError, match="rtol must be a number >= 0"):
            store.diff(a, b, rtol=-1)
    # The first node, walking both graphs, whose op or operands differ.
    first = next(
        i
        for i in range(min(len(ga), len(gb)))
        if (ga["op"][i], ga["parents"][i]) != (gb["op"][i], gb["parents"][i])
    )
    assert not d.same_shapes and d.shape.index == 0 and d.shape.node == first
    assert (d.shape.op_a, d.shape.parents_a) == (ga["op"][first], ga["parents"][first])
    assert (d.shape.op_b, d.shape.parents_b) == (gb["op"][first], gb["parents"][first])
    assert d.first_trace_step == 0 and d.node_value is None  # the shapes part there
    assert d.first_param_step == 1  # same weights at step 0; different data, updates
    assert only_a.shape.first_step_a == 0 and only_a.shape.first_step_b is None
    assert {s.key for s in only_a.differences} == {"capture"}
    out = CliRunner().invoke(cli, ["diff", a, b, "--db", db_url])
    assert f"graph shape 0 differs at node {first}: A op" in out.output


def test_bitwise_equality_and_bisection_rules():
    a = np.array([1.0, NAN_PAYLOAD, -0.0, math.inf])
    assert equal_mask(a, a.copy()).all()
    # Any NaN equals any NaN (payload and sign are not the program's), -0.0 is not 0.0.
    assert equal_mask(np.array([math.nan]), np.array([NAN_PAYLOAD]))[0]
    assert equal_mask(np.array([-math.nan]), np.array([NAN_PAYLOAD]))[0]
    assert not equal_mask(np.array([math.nan]), np.array([math.inf]))[0]
    assert not equal_mask(np.array([0.0]), np.array([-0.0]))[0]
    assert equal_mask(np.array([0.0]), np.array([-0.0]), atol=1e-300)[0]
    assert first_unequal(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == 1
    assert first_unequal(np.array([1.0]), np.array([1.0, 2.0])) == 1
    diverged = set(range(7, 100))
    asked: list[int] = []

    def differs(s: int) -> bool:
        asked.append(s)
        return s in diverged

    # Bytes differ from step 3 on, values (within tolerance) from step 7 on.
    assert first_differing_step(3, list(range(4, 100)), differs) == 7
    assert len(asked) < 10  # bisected, not walked
    assert first_differing_step(None, [1, 2], differs) is None
    # A difference that heals (steps 10 to 12 only) is found from a hint, not by bisection.
    healed = {10, 11, 12}
    steps = list(range(0, 40, 2))
    assert probe_then_bisect(steps, [], healed.__contains__) is None
    assert probe_then_bisect(steps, [11], healed.__contains__) == 10  # bisected back
    assert probe_then_bisect(steps, [9], healed.__contains__) == 10
    asked.clear()
    assert probe_then_bisect(list(range(100)), [50], differs) == 7  # earlier than the hint
    assert len(asked) < 12


def _nan_run(url: str, leaf: float) -> str:
    """One weight times a NaN input: every node after the input is a NaN carrying
    ``leaf``'s payload, and so is the logged loss."""
    w = Value(0.5, label="w")
    with tracer.record("nan", db=url) as run:
        run.watch([w])
        for _ in range(3):
            loss = w * Value(leaf) + 1.0
            w.grad = 0.0
            loss.backward()
            run.log(loss)
            w.data -= 0.1 * w.grad
    return run.id


def test_nans_of_different_payloads_are_the_same_computation(db_url):
    """Issue 19, item 4: a NaN's payload depends on CPython's bytecode specialisation,
    so one program recorded twice can store different NaN bits; diff calls it one."""
    a, b = _nan_run(db_url, math.nan), _nan_run(db_url, NAN_PAYLOAD)
    with tracer.connect(db_url, readonly=True) as store:
        loss_a = store.run(a).metrics()["loss"].to_numpy()
        loss_b = store.run(b).metrics()["loss"].to_numpy()
        assert fbits(loss_a[0]) != fbits(loss_b[0])  # the bits do differ
        d = store.diff(a, b)
    assert d.first_trace_step is None and d.node_value is None, d.node_value
    assert all(m.first_diff_step is None for m in d.metrics)
    assert d.identical
