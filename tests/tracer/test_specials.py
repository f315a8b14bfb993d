"""NaN (with payloads and signs), ±inf and -0.0 go in and come out bit for bit, and SQL
filters on metrics treat a NaN the way the schema promises (stored as NULL)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.engine import Value
from helpers.trace import (
    NAN_NEGATIVE,
    NAN_PAYLOAD,
    NAN_SIGNALLING,
    SPECIALS,
    bits,
    fbits,
    from_bits,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradtrace import tracer


def test_specials_in_values_grads_updates_and_metrics(db_url):
    params = [Value(x, label=f"p{i}") for i, x in enumerate(SPECIALS)]
    grads = SPECIALS[::-1]
    afters = SPECIALS[3:] + SPECIALS[:3]
    metrics = {f"m{i}": x for i, x in enumerate(SPECIALS)}
    expected_nodes = []
    with tracer.record("specials", db=db_url) as run:
        run.watch(params)
        for step, lr in enumerate([NAN_PAYLOAD, -0.0, 0.25]):
            loss = params[0]
            for p in params[1:]:
                loss = loss * 1.0 + p
            loss.backward()
            for p, g in zip(params, grads, strict=True):
                p.grad = g  # whatever the leaves hold at log time is what is stored
            nodes = loss.topo()
            expected_nodes.append((bits([v.data for v in nodes]), bits([v.grad for v in nodes])))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                run.log(loss, lr=lr, **metrics)
            for p, x in zip(params, afters if step % 2 == 0 else SPECIALS, strict=True):
                p.data = x
                p.grad = 0.0
    with tracer.connect(db_url) as store:
        with store.engine.connect() as conn:  # the round trip below is through zstd
            stored = conn.execute(sa.text("SELECT codec, data FROM traces")).all()
        assert {codec for codec, _ in stored} == {1}
        assert all(bytes(data).startswith(b"\x28\xb5\x2f\xfd") for _, data in stored)
        view = store.run("specials")
        for step, (data, grad) in enumerate(expected_nodes):
            nodes = view.nodes(step)
            assert (bits(nodes["value"]) == data).all(), step
            assert (bits(nodes["grad"]) == grad).all(), step
        leaves = view.nodes(0).dropna(subset=["param"]).sort_values("param")
        assert (bits(leaves["value"]) == bits(SPECIALS)).all()

        m = view.metrics()
        for name, x in metrics.items():
            assert (bits(m[name]) == fbits(x)).all(), name
        assert bits(m["lr"]).tolist() == [fbits(NAN_PAYLOAD), fbits(-0.0), fbits(0.25)]
        assert (bits(view.values().to_numpy()[0]) == bits(SPECIALS)).all()
        assert (bits(view.gradients().to_numpy()) == bits(grads)).all()

        u = view.updates()
        for step, lr in enumerate([NAN_PAYLOAD, -0.0, 0.25]):
            s = u[u["step"] == step].sort_values("param")
            before = SPECIALS if step % 2 == 0 else afters
            after = afters if step % 2 == 0 else SPECIALS
            assert (bits(s["value_before"]) == bits(before)).all(), step
            assert (bits(s["grad"]) == bits(grads)).all(), step
            assert (bits(s["value_after"]) == bits(after)).all(), step
            assert (bits(s["lr"]) == fbits(lr)).all(), step

        data0, grad0 = (a.view(np.float64) for a in expected_nodes[0])
        bad = ~(np.isfinite(data0) & np.isfinite(grad0))
        first = view.first_nonfinite()
        # Leaves fed NaN and inf: the first non-finite value in topological order.
        assert (first.step, first.kind, first.op) == (0, "forward", "")
        assert first.node == int(np.flatnonzero(~np.isfinite(data0))[0]) and bad[first.node]


def test_nan_metric_is_null_for_sql_filters(db_url):
    losses = [0.05, math.nan, 2.0, NAN_PAYLOAD, 0.5, -math.inf, math.inf, -0.0, NAN_NEGATIVE]
    with tracer.record("sql", db=db_url) as run:
        for x in losses:
            run.log(x)
    with tracer.connect(db_url) as store:
        key = store.run("sql").key

        def steps(where: str) -> list[int]:
            with store.engine.connect() as conn:
                return (
                    conn.execute(
                        sa.text(
                            f"SELECT step FROM metrics WHERE run_key = :k AND name = 'loss' "
                            f"AND {where} ORDER BY step"
                        ),
                        {"k": key},
                    )
                    .scalars()
                    .all()
                )

        assert steps("value < 0.1") == [0, 5, 7]  # 0.05, -inf, -0.0: never a NaN
        assert steps("value > 1") == [2, 6]  # 2.0 and inf: never a NaN
        assert steps("value IS NULL") == [1, 3, 8]
        with store.engine.connect() as conn:
            raw = dict(
                conn.execute(
                    sa.text("SELECT step, raw FROM metrics WHERE run_key = :k AND raw IS NOT NULL"),
                    {"k": key},
                ).all()
            )
        assert sorted(raw) == [1, 3, 7, 8]  # NaNs and -0.0 keep their exact bits
        assert {k: fbits(np.frombuffer(bytes(b), "<f8")[0]) for k, b in raw.items()} == {
            k: fbits(losses[k]) for k in raw
        }
        assert bits(store.run("sql").metrics()["loss"]).tolist() == [fbits(x) for x in losses]


def test_first_nonfinite_node_and_one_warning(db_url):
    x, w = Value(1.0, label="x"), Value(2.0, label="w")
    with tracer.record("log0", db=db_url) as run:
        run.watch([x, w])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for step in range(4):
                x.data = 1.0 if step == 0 else 0.0  # log(0) from step 1 on
                loss = (x.log() * w + w * w) * 0.5
                x.grad = w.grad = 0.0
                loss.backward()
                nodes = loss.topo()
                if step == 1:
                    finite = [math.isfinite(v.data) and math.isfinite(v.grad) for v in nodes]
                    first = finite.index(False)
                    log_node = next(i for i, v in enumerate(nodes) if v.op == "log")
                run.log(loss)
    warned = [c for c in caught if issubclass(c.category, RuntimeWarning)]
    assert len(warned) == 1, [str(c.message) for c in warned]
    assert f"step 1: `log` of 0 gave -inf (node {log_node})" in str(warned[0].message)
    assert warned[0].filename == __file__  # points at the user's log() call
    with tracer.connect(db_url) as store:
        view = store.run("log0")
        found = view.first_nonfinite()
        assert (found.step, found.node, found.kind, found.op) == (1, log_node, "forward", "log")
        assert view.steps()["first_nonfinite"].tolist()[1:] == [first] * 3
        assert pd.isna(view.steps()["first_nonfinite"].iloc[0])
        nodes = view.nodes(1)
        assert nodes.loc[log_node, "op"] == "log" and nodes.loc[log_node, "value"] == -math.inf


# Every float64 bit pattern, plus hypothesis's own float choices and the specials.
ANY_FLOAT = st.one_of(
    st.floats(),
    st.integers(0, 2**64 - 1).map(from_bits),
    st.sampled_from([*SPECIALS, NAN_SIGNALLING]),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.tuples(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT), min_size=1, max_size=5),
    lr=ANY_FLOAT,
    metrics=st.lists(ANY_FLOAT, min_size=1, max_size=4),
)
def test_any_float_round_trips_in_updates_and_metrics(db_url, rows, lr, metrics):
    params = [Value(0.0) for _ in rows]
    with tracer.record("hyp", db=db_url) as run:
        run.watch(params)
        for p, (before, grad, _) in zip(params, rows, strict=True):
            p.data, p.grad = before, grad
        run.log(lr=lr, **{f"m{i}": x for i, x in enumerate(metrics)})
        for p, (_, _, after) in zip(params, rows, strict=True):
            p.data = after
        run_id = run.id
    with tracer.connect(db_url) as store:
        view = store.run(run_id)
        u = view.updates().sort_values("param")
        for j, col in enumerate(["value_before", "grad", "value_after"]):
            assert bits(u[col]).tolist() == [fbits(r[j]) for r in rows], col
        assert (bits(u["lr"]) == fbits(lr)).all()
        m = view.metrics()
        assert [fbits(m.loc[0, f"m{i}"]) for i in range(len(metrics))] == [
            fbits(x) for x in metrics
        ]
        assert fbits(m.loc[0, "lr"]) == fbits(lr)


def test_non_finite_exponents_in_the_graph(db_url):
    """``x ** inf`` and ``x ** nan`` nodes: PostgreSQL's json rejects a bare NaN/Infinity."""
    x = Value(2.0, label="x")
    with tracer.record("exponents", db=db_url) as run:
        run.watch([x])
        for _ in range(2):
            y = x**math.inf + x**math.nan + x**-math.inf + x**0.5
            x.grad = 0.0
            y.backward()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                run.log(y)
            nodes = y.topo()
    with tracer.connect(db_url) as store:
        view = store.run("exponents")
        assert view.traced_steps() == [0, 1]
        graph = view.graph(1)
        pows = [i for i, v in enumerate(nodes) if v.op == "**"]
        assert graph.loc[pows, "op"].tolist() == ["**"] * 4
        got = graph.loc[pows, "arg"].tolist()
        want = [v.exponent for v in nodes if v.op == "**"]
        assert [str(g) for g in got] == [str(w) for w in want]
        assert (bits(view.nodes(1)["value"]) == bits([v.data for v in nodes])).all()
