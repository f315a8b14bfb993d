"""Where a run's first NaN/inf came from: each kind of origin built on purpose, named
the same by the API, the recorder's warning and the command line, on both backends."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import pandas as pd
import pytest
from click.testing import CliRunner
from gradtrace.engine import MLP, SGD, Value, mse
from gradtrace.tracer.analysis.forensics import upstream_params
from gradtrace.tracer.analysis.origintypes import Origin
from helpers.trace import bits

from gradtrace import tracer
from gradtrace.cli.main import cli


def record(db: str, name: str, body: Callable, **options) -> tuple[Origin, list[str]]:
    """Record ``body(run)``; the stored origin and the RuntimeWarnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tracer.record(name, db=db, **options) as run:
            body(run)
    with tracer.connect(db, readonly=True) as store:
        origin = store.run(name).first_nonfinite()
        # The runs list reads the writer's totals; it names the origin's step.
        diverged = store.runs().set_index("name").loc[name, "diverged_at_step"]
        assert (None if pd.isna(diverged) else diverged) == (origin and origin.step)
    return origin, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def node_of(loss: Value, node: Value) -> int:
    return next(i for i, v in enumerate(loss.topo()) if v is node)


def test_exploding_lr_names_the_overflowing_op_not_a_poisoned_leaf(db_url):
    """The issue's moons case in small: an lr that triples every step. The first
    non-finite value is a `**2` whose finite input overflowed; the leaves whose
    gradients that inf then poisoned come first in topological order."""
    model = MLP(1, [4, 1], activation="relu", seed=0)
    opt = SGD(model.parameters(), lr=lambda k: 0.01 * 3.0**k)
    X, Y = [[1.0], [2.0], [-1.5]], [1.0, -1.0, 0.5]
    expect: dict = {}

    def body(run):
        run.watch(model, optimizer=opt)
        for k in range(14):
            loss = mse([model([Value(x) for x in row]) for row in X], Y)
            model.zero_grad()
            loss.backward()
            nodes = loss.topo()
            bad = [i for i, v in enumerate(nodes) if not math.isfinite(v.data)]
            if bad and not expect:
                v = nodes[bad[0]]
                expect.update(step=k, node=bad[0], value=v.data, parent=v.parents[0].data)
                scan = [math.isfinite(v.data) and math.isfinite(v.grad) for v in nodes]
                expect["old_answer"] = scan.index(False)
                above, todo = set(), [v]
                while todo:
                    u = todo.pop()
                    above.add(id(u))
                    todo += u.parents
                params = model.parameters()
                expect["upstream"] = [i for i, p in enumerate(params) if id(p) in above]
            run.log(loss)
            opt.step()

    origin, warned = record(db_url, "explode", body)
    assert expect["old_answer"] < expect["node"]  # the old scan would name a leaf
    assert (origin.step, origin.kind, origin.node, origin.op) == (
        expect["step"],
        "forward",
        expect["node"],
        "**2",
    )
    assert origin.value == math.inf and origin.exact
    assert bits([origin.parents[0].value]) == bits([expect["parent"]])
    assert "overflowed to inf" in origin.story
    assert len(warned) == 1 and origin.story in warned[0]
    with tracer.connect(db_url, readonly=True) as store:
        g = store.run("explode").graph(origin.step)
    found = upstream_params(
        g["a"].to_numpy(dtype="int64", na_value=-1),
        g["b"].to_numpy(dtype="int64", na_value=-1),
        g["param"].to_numpy(dtype="int64", na_value=-1),
        origin.node,
    )
    assert found == expect["upstream"] and found


def _log_of_zero(run):
    w, x = Value(1.0, label="w"), Value(0.0, label="x")
    run.watch([w])
    loss = (w * x).log()
    loss.backward()
    run.log(loss)
    return {"step": 0, "node": node_of(loss, loss), "parents": [0.0]}


def _zero_over_zero(run):
    w = Value(2.0)
    run.watch([w])
    for k in range(3):
        a = w * (0.0 if k == 2 else 1.0)
        loss = a / a
        w.grad = 0.0
        loss.backward()
        run.log(loss)
    return {"step": 2, "node": node_of(loss, loss), "parents": [0.0, 0.0]}


def _sqrt_of_negative(run):
    w = Value(1.0)
    run.watch([w])
    for k in range(2):
        root = (w * (-1.0 if k else 1.0)) ** 0.5
        loss = root + 1.0
        w.grad = 0.0
        loss.backward()
        run.log(loss)
    return {"step": 1, "node": node_of(loss, root), "parents": [-1.0]}


def _inf_input(run):
    w = Value(1.0)
    run.watch([w])
    x = Value(math.inf, label="x")
    loss = w * x
    loss.backward()
    run.log(loss)
    return {"step": 0, "node": node_of(loss, x), "parents": [], "name": "x"}


def _sqrt_at_zero(run):
    """The value pass is finite (sqrt(0) = 0); d/dx sqrt(x) at 0 is inf."""
    w = Value(0.0, label="w")
    run.watch([w])
    root = w**0.5
    loss = root * 2.0
    loss.backward()
    run.log(loss)
    return {"step": 0, "node": node_of(loss, root), "parents": [0.0], "sent": math.inf}


def _product_gradient_overflow(run):
    """Finite values, finite gradient, finite factor: their product overflows."""
    w, x = Value(1e200, label="w"), Value(1e-200, label="x")
    run.watch([w])
    a = w * x
    loss = a * 1e200
    loss.backward()
    run.log(loss)
    return {"step": 0, "node": node_of(loss, a), "parents": [1e200, 1e-200], "sent": math.inf}


FORWARD = {
    "log-of-zero": (_log_of_zero, "log"),
    "zero-over-zero": (_zero_over_zero, "/"),
    "sqrt-of-negative": (_sqrt_of_negative, "**0.5"),
    "inf-input": (_inf_input, ""),
}
BACKWARD = {
    "sqrt-at-zero": (_sqrt_at_zero, "**0.5"),
    "gradient-overflow": (_product_gradient_overflow, "*"),
}


@pytest.mark.parametrize("case", [*FORWARD, *BACKWARD])
def test_node_origins(db_url, case):
    body, op = {**FORWARD, **BACKWARD}[case]
    expect: dict = {}
    origin, warned = record(db_url, case, lambda run: expect.update(body(run)))
    kind = "forward" if case in FORWARD else "backward"
    assert (origin.step, origin.kind, origin.node, origin.op) == (
        expect["step"],
        kind,
        expect["node"],
        op,
    )
    assert origin.exact and origin.name == expect.get("name")
    assert [p.value for p in origin.parents] == expect["parents"]
    if kind == "forward":
        assert not math.isfinite(origin.value)
    else:
        assert math.isfinite(origin.value) and math.isfinite(origin.grad)
        assert expect["sent"] in [p.sent for p in origin.parents]
    assert len(warned) == 1 and origin.story in warned[0], warned


def test_minimal_log_case_names_the_log_node(db_url):
    """The issue's minimal case: `(w * x).log()` with x = 0 is the `log` node at -inf,
    not leaf `w` (value 1.0, gradient NaN)."""
    expect: dict = {}
    origin, _ = record(db_url, "minimal", lambda run: expect.update(_log_of_zero(run)))
    assert (origin.node, origin.op, origin.value, origin.name) == (3, "log", -math.inf, None)
    assert origin.story == "step 0: `log` of 0 gave -inf (node 3)"
    assert [(p.node, p.op, p.value) for p in origin.parents] == [(2, "*", 0.0)]


@pytest.mark.parametrize("capture", ["nodes", "params"])
def test_update_origin(db_url, capture):
    """The update of step 2 makes the weight -inf; the number shows at step 3."""
    w = Value(1.0, label="w")
    seen: list[tuple[float, float]] = []

    def body(run):
        run.watch([w])
        for k in range(4):
            loss = w * w
            w.grad = 0.0
            loss.backward()
            lr = 1.7e308 if k == 2 else 0.1  # times the gradient 1.28: past the float limit
            run.log(loss, lr=lr)
            seen.append((w.data, w.grad))
            w.data -= lr * w.grad

    origin, warned = record(db_url, "update", body, capture=capture)
    assert (origin.step, origin.kind, origin.node, origin.name, origin.param) == (
        2,
        "update",
        None,
        "p0",
        0,
    )
    assert (origin.before, origin.grad, origin.lr) == (*seen[2], 1.7e308)
    assert origin.value == -math.inf and origin.exact == (capture == "nodes")
    assert len(warned) == 1 and origin.story in warned[0]


def test_update_of_the_last_step(db_url):
    w = Value(1.0)

    def body(run):
        run.watch([w])
        run.log(1.0)
        w.data = math.inf

    origin, warned = record(db_url, "last", body)
    assert (origin.step, origin.kind, origin.value, origin.before) == (0, "update", math.inf, 1.0)
    assert len(warned) == 1 and origin.story in warned[0]


def test_nan_metric(db_url):
    w = Value(1.0)

    def body(run):
        run.watch([w])
        for k in range(3):
            loss = w * 0.5
            w.grad = 0.0
            loss.backward()
            run.log(loss, acc=math.nan if k == 1 else 0.5)

    origin, warned = record(db_url, "metric", body)
    assert (origin.step, origin.kind, origin.name, origin.node) == (1, "metric", "acc", None)
    assert math.isnan(origin.value) and origin.exact
    assert len(warned) == 1 and origin.story in warned[0]


def test_without_node_traces_the_answer_says_so(db_url):
    """Step 3 is between every=2 traces: the gradient is seen on the parameter, the
    node that made it is not known, and the record says so."""
    w = Value(0.0, label="w")

    def body(run):
        run.watch([w])
        for k in range(5):
            loss = (w + (0.0 if k == 3 else 1.0)) ** 0.5
            w.grad = 0.0
            loss.backward()
            run.log(loss)

    origin, warned = record(db_url, "every", body, every=2)
    assert (origin.step, origin.kind, origin.node, origin.name) == (3, "backward", None, "p0")
    assert origin.grad == math.inf and not origin.exact
    assert "step 3 has no node trace" in origin.story
    assert len(warned) == 1 and origin.story in warned[0]


def test_stale_gradient_is_named_with_its_cause(db_url):
    """A gradient non-finite before backward() (no zero_grad): no rule made it."""
    w = Value(1.0, label="w")

    def body(run):
        run.watch([w])
        w.grad = math.inf
        loss = w * 2.0
        loss.backward()
        run.log(loss)

    origin, _ = record(db_url, "stale", body)
    assert (origin.kind, origin.node, origin.name, origin.grad) == ("backward", 0, "p0", math.inf)
    assert "zero_grad()" in origin.story


def test_params_only_run_with_an_infinite_parameter_from_the_start(db_url):
    w = Value(math.inf)

    def body(run):
        run.watch([w])
        for _ in range(3):
            run.log(1.0)

    origin, _ = record(db_url, "inf-param", body, capture="params")
    assert (origin.step, origin.kind, origin.exact) == (0, "forward", False)


def test_finite_run_has_no_origin(db_url):
    w = Value(1.0)

    def body(run):
        run.watch([w])
        for _ in range(3):
            loss = w * w
            w.grad = 0.0
            loss.backward()
            run.log(loss, acc=1.0)
            w.data -= 0.1 * w.grad

    origin, warned = record(db_url, "fine", body)
    assert origin is None and warned == []


def test_why_prints_the_story_and_its_parts(db_url):
    record(db_url, "why", _sqrt_at_zero)
    result = CliRunner().invoke(cli, ["why", "why", "--db", db_url])
    assert result.exit_code == 0, result.output
    with tracer.connect(db_url, readonly=True) as store:
        origin = store.run("why").first_nonfinite()
    lines = result.output.splitlines()
    assert lines[0] == origin.story
    assert "kind       backward (a gradient went non-finite while every value was finite)" in lines
    assert f"node       {origin.node}, op **0.5" in lines
    assert "input      node 0 `p0` (leaf): value 0, sent inf" in lines
    assert "parameters 1 upstream of node 1: p0" in lines


def test_why_escapes_control_characters_in_names(db_url):
    def body(run):
        w = Value(1.0)
        run.watch([w])
        run.log(1.0, **{"acc\x1b[31m": math.nan})

    record(db_url, "esc\x1b[2J", body)
    result = CliRunner().invoke(cli, ["why", "esc", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "metric     acc\\x1b[31m" in result.output.splitlines()


def test_why_on_a_finite_run(db_url):
    record(db_url, "ok", lambda run: run.log(1.0))
    result = CliRunner().invoke(cli, ["why", "ok", "--db", db_url])
    assert result.exit_code == 0 and "every value, gradient and metric is finite" in result.output


def test_runs_flags_the_step_each_run_diverged_at(db_url):
    """``runs()``'s diverged_at_step is the origin's step for node and metric origins,
    <NA> for a finite run."""
    record(db_url, "zero-over-zero", _zero_over_zero)
    record(db_url, "ok", lambda run: run.log(1.0, acc=0.5))
    record(db_url, "metric", lambda run: [run.log(1.0, acc=x) for x in (0.5, 0.5, math.inf)])
    with tracer.connect(db_url, readonly=True) as store:
        df = store.runs().set_index("name")
        assert str(df["diverged_at_step"].dtype) == "Int64"
        assert df.loc["zero-over-zero", "diverged_at_step"] == 2
        assert store.run("zero-over-zero").first_nonfinite().step == 2
        assert df.loc["metric", "diverged_at_step"] == 2
        assert pd.isna(df.loc["ok", "diverged_at_step"])
        assert df.loc[["ok"], "diverged_at_step"].isna().all()
        assert store.runs(experiment="nothing")["diverged_at_step"].dtype == "Int64"
