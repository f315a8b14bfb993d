"""The pandas query API (tracer.connect -> Store -> RunView), on SQLite and PostgreSQL.

Runs are recorded by hand with the in-process numbers kept at log time; every
number read back must have the same 64 bits (NaN payloads, signalling NaN, -0.0,
infinities, subnormals), every frame the documented columns and dtypes.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from gradtrace.engine import Module, Value, structure
from gradtrace.tracer.recording.demo import train
from gradtrace.tracer.storage.db import open_database, writing
from gradtrace.tracer.storage.models import Run
from helpers.bits import NAN_PAYLOAD, record_bits_run

from gradtrace import tracer

pytestmark = pytest.mark.filterwarnings("ignore:gradtrace. a value or gradient:RuntimeWarning")

STR = pd.Series(["x"]).dtype  # pandas' string dtype
I8, F8, INT64, BOOL = np.dtype("int64"), np.dtype("float64"), pd.Int64Dtype(), np.dtype(bool)
OBJ = np.dtype(object)

# The documented frames (tracer/read/runview.py module docstring): column -> dtype.
PARAMETERS = {
    "idx": I8,
    "name": STR,
    "group": STR,
    "layer": INT64,
    "neuron": INT64,
    "kind": STR,
    "input": INT64,
}
UPDATES = {
    "step": I8,
    "param": I8,
    "name": STR,
    "value_before": F8,
    "grad": F8,
    "value_after": F8,
    "lr": F8,
}
STEPS = {"wall_time": F8, "graph_key": INT64, "first_nonfinite": INT64, "traced": BOOL}
GRAPH = {
    "node": I8,
    "op": STR,
    "label": STR,
    "parents": OBJ,
    "a": INT64,
    "b": INT64,
    "arg": F8,
    "param": INT64,
    "kind": STR,
}
NODES = {**GRAPH, "value": F8, "grad": F8}
RUNS = {
    "id": STR,
    "name": STR,
    "experiment": STR,
    "status": STR,
    "started_at": pd.DatetimeTZDtype("us", "UTC"),
    "ended_at": pd.DatetimeTZDtype("us", "UTC"),
    "duration_s": F8,
    "steps": I8,
    "diverged_at_step": INT64,
}


def bits(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64)


def assert_bits(actual, expected, what: str = "") -> None:
    a, e = bits(actual), bits(expected)
    assert a.shape == e.shape, what
    bad = np.flatnonzero(a != e)
    assert not bad.size, (
        f"{what}: {bad.size} values differ, first at {bad[0]}: "
        f"{a.flat[bad[0]]:#018x} != {e.flat[bad[0]]:#018x}"
    )


def assert_schema(df: pd.DataFrame, schema: dict) -> None:
    assert list(df.columns) == list(schema)
    assert df.dtypes.to_dict() == schema


def insert_run(url: str, **values) -> str:
    """A runs row written directly (crash states, chosen ids and names)."""
    now = datetime.now(UTC)
    row = {
        "id": uuid.uuid4().hex,
        "name": "r",
        "experiment": "default",
        "status": "finished",
        "started_at": now,
        "ended_at": now,
        "heartbeat_at": now,
        "steps": 0,
        "config": {},
        "tags": [],
        "notes": "",
        "capture": "nodes",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": None,
        "version": "test",
    }
    row.update(values)
    engine = writing(open_database(url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(Run).values(**row))
    finally:
        engine.dispose()
    return row["id"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- bit-exact round trips ---------------------------------------------------------


def test_every_number_reads_back_bit_for_bit(db_url):
    log = record_bits_run(db_url)
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run("bits")
        steps = len(log["metrics"])

        metrics = run.metrics()
        assert list(metrics.columns) == ["loss", "lr", "m_other", "m_special", "wall_time"]
        assert metrics.index.name == "step" and metrics.index.dtype == I8
        assert metrics.dtypes.unique().tolist() == [F8]
        assert metrics.index.tolist() == list(range(steps))
        for name in ("loss", "lr", "m_other", "m_special"):
            assert_bits(metrics[name], [m[name] for m in log["metrics"]], f"metric {name}")
        assert (metrics["wall_time"] > 1.7e9).all()

        upd = run.updates()
        assert_schema(upd, UPDATES)
        assert upd["step"].tolist() == [k for k in range(steps) for _ in range(3)]
        assert upd["param"].tolist() == [0, 1, 2] * steps
        assert upd["name"].tolist() == ["p0", "p1", "p2"] * steps
        assert_bits(upd["value_before"], np.ravel(log["before"]), "value_before")
        assert_bits(upd["grad"], np.ravel(log["grad"]), "grad")
        assert_bits(upd["value_after"], np.ravel(log["after"]), "value_after")
        assert_bits(upd["lr"], np.repeat(log["lr"], 3), "lr")

        assert_bits(run.gradients().to_numpy(), log["grad"], "gradients()")
        assert_bits(run.values().to_numpy(), log["before"], "values()")

        for k, (data, grad) in enumerate(log["nodes"]):
            nodes = run.nodes(k)
            assert_bits(nodes["value"], data, f"node values of step {k}")
            assert_bits(nodes["grad"], grad, f"node grads of step {k}")


def test_specials_stay_sql_friendly(db_url):
    """NaN is NULL in SQL (so comparisons skip it), infinities are stored as such."""
    record_bits_run(db_url)
    with tracer.connect(db_url, readonly=True) as store:
        df = pd.read_sql(
            sa.text("SELECT step, value FROM metrics WHERE name = 'm_special' ORDER BY step"),
            store.engine,
        )
    assert df["value"].isna().tolist() == [False, False, False, False, True, True]
    assert df["value"].tolist()[:4] == [0.1, 0.0, math.inf, -math.inf]


# -- frames and their dtypes ---------------------------------------------------------


def test_documented_frames(db_url):
    train("toy", 3, db_url, name="toy")
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run("toy")
        params = run.parameters()
        assert_schema(params, PARAMETERS)
        assert len(params) == 41 and params["idx"].tolist() == list(range(41))
        first = params.iloc[0]
        assert (first["name"], first["layer"], first["neuron"], first["kind"]) == (
            "layers.0.neurons.0.w.0",
            0,
            0,
            "weight",
        )
        assert params.loc[3, "kind"] == "bias" and params.loc[40, "layer"] == 2
        assert params.loc[2, "input"] == 2 and pd.isna(params.loc[3, "input"])
        assert params["group"].tolist() == [f"layer {x}" for x in params["layer"]]

        steps = run.steps()
        assert_schema(steps, STEPS)
        assert steps.index.name == "step" and steps.index.tolist() == [0, 1, 2]
        assert steps["traced"].all() and steps["first_nonfinite"].isna().all()

        assert_schema(run.updates(), UPDATES)
        for wide in (run.gradients(), run.values()):
            assert wide.index.name == "step" and wide.index.dtype == I8
            assert wide.columns.tolist() == params["name"].tolist()
            assert (wide.dtypes == F8).all()

        assert_schema(run.graph(1), GRAPH)
        assert_schema(run.nodes(1), NODES)
        assert run.metrics().columns.tolist() == ["acc", "loss", "lr", "wall_time"]

        # Empty selections keep their columns and dtypes.
        assert_schema(run.updates(steps=[]), UPDATES)
        assert_schema(run.steps(since=99), STEPS)
        assert run.gradients(steps=[]).shape == (0, 41)
        assert run.metrics(since=99).empty

        summary = run.summary()
        assert summary["steps"] == 3 and summary["last_step"] == 2
        assert summary["parameters"] == 41 and summary["nodes_per_step"] == 360
        assert summary["started_at"].tzinfo is not None
        last = run.last_metrics()
        assert last.index.tolist() == ["acc", "loss", "lr"]
        assert last["step"].tolist() == [2, 2, 2]


def test_runs_table_and_crashed_detection(db_url):
    train("toy", 2, db_url, name="first", seed=1)
    train("toy", 3, db_url, name="second", seed=2)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    insert_run(db_url, name="killed", status="running", pid=dead_pid(), ended_at=None)
    insert_run(db_url, name="alive", status="running", ended_at=None)
    insert_run(
        db_url,
        name="far-silent",
        status="running",
        host="elsewhere",
        ended_at=None,
        heartbeat_at=long_ago,
        started_at=long_ago - timedelta(minutes=5),
    )
    insert_run(db_url, name="far-busy", status="running", host="elsewhere", ended_at=None)
    with tracer.connect(db_url, readonly=True) as store:
        df = store.runs()
        run_cols = list(RUNS)
        assert df.columns.tolist()[: len(run_cols)] == run_cols
        assert df[run_cols].dtypes.to_dict() == RUNS
        assert [c for c in df.columns if c.startswith("metric.")] == [
            "metric.acc",
            "metric.loss",
            "metric.lr",
        ]
        assert {"config.lr", "config.steps", "config.model"} <= set(df.columns)
        status = dict(zip(df["name"], df["status"], strict=True))
        assert status == {
            "first": "finished",
            "second": "finished",
            "killed": "crashed",
            "alive": "running",
            "far-silent": "crashed",
            "far-busy": "running",
        }
        second = df.set_index("name").loc["second"]
        view = store.run("second")
        assert second["steps"] == 3 and second["config.steps"] == 3
        assert second["metric.loss"] == view.metrics()["loss"].iloc[-1]
        assert second["duration_s"] > 0 and second["ended_at"] >= second["started_at"]
        assert pd.isna(df.set_index("name").loc["killed", "ended_at"])
        assert pd.isna(df.set_index("name").loc["killed", "metric.loss"])
        assert store.run("killed").status == "crashed"
        # Newest first.
        assert df["started_at"].is_monotonic_decreasing
        assert store.runs(experiment="demo")["name"].tolist() == ["second", "first"]
        empty = store.runs(experiment="no such")
        assert empty.empty and empty.dtypes.to_dict() == RUNS


# -- finding a run ----------------------------------------------------------------------


def test_run_by_id_prefix_name_and_name_prefix(db_url):
    a = insert_run(db_url, id="abc1" + "0" * 28, name="alpha")
    b = insert_run(db_url, id="abc2" + "0" * 28, name="beta-long-name")
    with tracer.connect(db_url, readonly=True) as store:
        assert store.run(a).id == a
        assert store.run(a.upper()).id == a
        assert store.run("abc1").id == a
        assert store.run("alpha").id == a
        assert store.run("beta-").id == b
        with pytest.raises(tracer.AmbiguousRun, match="'abc' matches 2 runs by id prefix") as e:
            store.run("abc")
        assert "abc10000 ('alpha'" in str(e.value) and "abc20000 ('beta-long-name'" in str(e.value)
        with pytest.raises(tracer.RunNotFound, match="no run matches 'gamma'"):
            store.run("gamma")
        with pytest.raises(tracer.RunNotFound):
            store.run("")


def test_a_name_shared_by_runs_means_the_newest(db_url):
    insert_run(db_url, id="1" * 32, name="x")
    insert_run(db_url, id="2" * 32, name="x")
    insert_run(db_url, id="3" * 32, name="xy")
    insert_run(db_url, id="4" * 32, name="solo")
    with tracer.connect(db_url, readonly=True) as store:
        newest = store.run("x")
        assert newest.id == "2" * 32
        assert newest.note is not None
        assert "'x' names 2 runs" in newest.note and "22222222" in newest.note
        assert "pass an id" in newest.note
        assert store.run("1111").id == "1" * 32  # an older one stays reachable by id
        assert store.run("1111").note is None
        assert store.run("solo").note is None
        assert store.run("xy").id == "3" * 32  # an exact name wins over the prefix "x"
        assert store.run("so").id == "4" * 32
        # A prefix of two different names is still ambiguous, and so is an id prefix.
        insert_run(db_url, id="5" * 32, name="pa-1")
        insert_run(db_url, id="5" * 31 + "6", name="pa-2")
        with pytest.raises(tracer.AmbiguousRun, match="'pa' matches 2 runs by name prefix"):
            store.run("pa")
        with pytest.raises(tracer.AmbiguousRun, match="'5555' matches 2 runs by id prefix"):
            store.run("5555")


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("100%", "100%"),
        ("a_b", "a_"),
        ("'; DROP TABLE runs; --", "';"),
        ('quote"s\\back', 'quote"'),
        ("ünï ☃", "ünï"),
    ],
)
def test_user_text_is_text(db_url, name, prefix):
    insert_run(db_url, id="a" * 32, name=name, experiment=name)
    insert_run(db_url, id="b" * 32, name="axb")  # what a_b would match as a LIKE pattern
    insert_run(db_url, id="c" * 32, name="1000")  # what 100% would match
    with tracer.connect(db_url, readonly=True) as store:
        assert store.run(name).id == "a" * 32
        assert store.run(prefix).id == "a" * 32
        for pattern in ("%", "_", "10%", "a_%", "%b"):
            with pytest.raises(tracer.RunNotFound):
                store.run(pattern)
        assert store.runs(experiment=name)["name"].tolist() == [name]
        assert store.runs(experiment="%").empty
        assert len(store.runs()) == 3  # the table is still there


# -- updates, gradients, values ----------------------------------------------------------


def test_updates_filters(db_url):
    train("toy", 12, db_url, name="toy", capture="params")
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run("toy")
        full = run.updates()
        assert len(full) == 12 * 41

        def expect(params=None, steps=None):
            df = full
            if params is not None:
                df = df[df["param"].isin(params)]
            if steps is not None:
                df = df[df["step"].isin(steps)]
            return df.reset_index(drop=True)

        cases = [
            (3, [3]),
            (range(2, 7), range(2, 7)),
            (range(1, 12, 4), [1, 5, 9]),
            (range(9, 0, -3), [9, 6, 3]),
            (range(5, 5), []),
            (slice(None, 3), [0, 1, 2]),
            (slice(10, None), [10, 11]),
            (slice(None, None, 5), [0, 5, 10]),
            (slice(2, 9, 3), [2, 5, 8]),
            ([11, 0, 4, 4], [0, 4, 11]),
            ((7, 1), [1, 7]),
            (np.array([2, 3], dtype=np.int32), [2, 3]),
            (np.int64(6), [6]),
            (list(range(0, 600, 1)), list(range(12))),  # longer than one IN list
            ([100], []),
        ]
        for steps, expected in cases:
            pd.testing.assert_frame_equal(run.updates(steps=steps), expect(steps=expected))
        weight = "layers.1.neurons.2.w.3"
        idx = run.parameters().set_index("name").loc[weight, "idx"]
        pd.testing.assert_frame_equal(run.updates(params=weight), expect([idx]))
        pd.testing.assert_frame_equal(
            run.updates(params=[weight, 0, np.int64(40)], steps=range(3, 6)),
            expect([0, idx, 40], range(3, 6)),
        )
        one = run.updates(params=[weight])
        assert one["step"].tolist() == list(range(12)) and set(one["name"]) == {weight}
        # Each step's value_after is the next step's value_before.
        assert (one["value_after"].to_numpy()[:-1] == one["value_before"].to_numpy()[1:]).all()

        with pytest.raises(
            tracer.GradtraceError, match=r"did you mean 'layers\.1\.neurons\.2\.w\.3'"
        ):
            run.updates(params="layers.1.neurons.2.w.33")
        with pytest.raises(tracer.GradtraceError, match="out of range"):
            run.updates(params=41)
        with pytest.raises(TypeError):
            run.updates(steps="3")
        with pytest.raises(TypeError):
            run.updates(steps=[1.5])
        with pytest.raises(ValueError):
            run.updates(steps=slice(0, 10, -1))


def test_gradients_and_values_match_updates(db_url):
    train("toy", 5, db_url, name="toy")
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run("toy")
        upd = run.updates()
        names = run.parameters()["name"].tolist()
        for frame, column in ((run.gradients(), "grad"), (run.values(), "value_before")):
            wide = upd.pivot(index="step", columns="name", values=column)[names]
            assert_bits(frame.to_numpy(), wide.to_numpy(), column)
            assert frame.index.tolist() == wide.index.tolist()
        sub = run.gradients(params=["layers.2.neurons.0.b", 0], steps=[1, 3])
        assert sub.columns.tolist() == ["layers.2.neurons.0.b", names[0]]
        assert sub.index.tolist() == [1, 3]
        assert_bits(sub.to_numpy(), run.gradients().loc[[1, 3], sub.columns].to_numpy())


# -- node traces ----------------------------------------------------------------------------


def test_nodes_match_the_engine_graph(db_url):
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c, f = Value(10.0, label="c"), Value(-2.0, label="f")
    with tracer.record("tiny", db=db_url) as run:
        run.watch([a, b])
        for _ in range(2):
            e = a * b
            e.label = "e"
            d = e + c
            d.label = "d"
            loss = (d * f).tanh() ** 3
            loss.label = "L"
            a.grad = b.grad = 0.0
            loss.backward()
            nodes, ops, pa, pb = structure(loss)
            expected = {
                "ops": ops,
                "parents": [() if x < 0 else ((x,) if y < 0 else (x, y)) for x, y in zip(pa, pb)],
                "labels": [v.label for v in nodes],
                "args": [v.exponent for v in nodes],
                "params": [0 if v is a else 1 if v is b else None for v in nodes],
                "data": [v.data for v in nodes],
                "grad": [v.grad for v in nodes],
            }
            run.log(loss)
            a.data -= 0.01 * a.grad
            b.data -= 0.01 * b.grad
    with tracer.connect(db_url, readonly=True) as store:
        view = store.run("tiny")
        df = view.nodes(1)
        assert_schema(df, NODES)
        assert df["node"].tolist() == list(range(len(expected["ops"])))
        assert df["op"].tolist() == expected["ops"]
        assert df["parents"].tolist() == expected["parents"]
        assert df["a"].tolist() == [p[0] if p else pd.NA for p in expected["parents"]]
        assert df["b"].tolist() == [p[1] if len(p) == 2 else pd.NA for p in expected["parents"]]
        assert df["label"].tolist() == expected["labels"]
        assert [None if pd.isna(x) else x for x in df["arg"]] == expected["args"]
        assert [None if pd.isna(x) else x for x in df["param"]] == expected["params"]
        assert_bits(df["value"], expected["data"], "value")
        assert_bits(df["grad"], expected["grad"], "grad")
        assert sorted(df["op"].unique()) == sorted(set(expected["ops"]))
        for i, parents in enumerate(df["parents"]):
            assert all(p < i for p in parents)  # topological order
        pd.testing.assert_frame_equal(view.graph(1), df.drop(columns=["value", "grad"]))
        assert view.traced_steps() == [0, 1]
        assert view.nodes_per_step() == len(df)
        with pytest.raises(tracer.GradtraceError, match=r"step 7 .* traced steps run from 0 to 1"):
            view.nodes(7)
        with pytest.raises(tracer.GradtraceError, match="no node trace"):
            view.graph(-1)


def test_first_nonfinite(db_url):
    """A run that blows up: the first node whose *value* is non-finite is the origin."""
    w = [Value(0.5), Value(1.0)]
    x = Value(3.0, label="x")
    expect = None
    with tracer.record("boom", db=db_url) as run:
        run.watch(w)
        for k in range(5):
            loss = (w[0] * x).exp() * w[1]
            loss.label = "loss"
            w[0].grad = w[1].grad = 0.0
            loss.backward()
            nodes = structure(loss)[0]
            bad = [i for i, v in enumerate(nodes) if not math.isfinite(v.data)]
            if bad and expect is None:
                v = nodes[bad[0]]
                expect = {
                    "step": k,
                    "node": bad[0],
                    "op": v.op,
                    "label": v.label,
                    "value": v.data,
                    "grad": v.grad,
                }
            run.log(loss)
            w[0].data *= 100.0  # exp overflows at step 2
    with tracer.connect(db_url, readonly=True) as store:
        found = store.run("boom").first_nonfinite()
    assert expect is not None and expect["step"] == 2
    # The value pass overflowed at `exp`: that node is the origin, not the leaves
    # whose gradients the overflow then poisoned.
    assert (found.step, found.kind, found.op, found.exact) == (2, "forward", "exp", True)
    assert found.node == expect["node"] and found.op == expect["op"]
    assert_bits([found.value, found.grad], [expect["value"], expect["grad"]])
    assert [p.value for p in found.parents] == [0.5 * 100.0**2 * 3.0]


def test_first_nonfinite_without_node_traces(db_url):
    log = record_bits_run(db_url, name="params-only", capture="params")
    train("toy", 2, db_url, name="fine")
    with tracer.connect(db_url, readonly=True) as store:
        assert store.run("fine").first_nonfinite() is None
        found = store.run("params-only").first_nonfinite()
    # Step 1 logs lr = NaN (with a payload) and a NaN gradient: the gradient comes
    # first (backward before metrics), and without node traces it is not exact.
    assert all(math.isfinite(v) for v in log["metrics"][0].values())
    assert (found.step, found.kind, found.name, found.node) == (1, "backward", "p2", None)
    assert not found.exact and "no node trace" in found.story
    assert_bits([found.grad], [NAN_PAYLOAD])


def test_first_nonfinite_in_parameters(db_url):
    w = [Value(1.0), Value(2.0)]
    with tracer.record("grad", db=db_url, capture="params") as run:
        run.watch(w)
        for k in range(4):
            w[1].grad = math.inf if k == 2 else 0.5
            run.log(1.0)
    w = [Value(1.0)]
    with tracer.record("after", db=db_url) as run:
        run.watch(w)
        run.log(1.0)
        w[0].data = -math.inf  # the last update, known only from the updates table
    with tracer.connect(db_url, readonly=True) as store:
        found = store.run("grad").first_nonfinite()
        assert (found.step, found.kind, found.param, found.name) == (2, "backward", 1, "p1")
        assert (found.value, found.grad, found.exact) == (2.0, math.inf, False)
        found = store.run("after").first_nonfinite()
        assert (found.step, found.kind, found.name, found.value) == (0, "update", "p0", -math.inf)
        assert (found.before, found.grad) == (1.0, 0.0)


# -- export ------------------------------------------------------------------------------------


def test_export_parquet_and_csv_read_back(db_url, tmp_path):
    record_bits_run(db_url)
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run("bits")
        expected = {
            "metrics": run.metrics().reset_index(),
            "parameters": run.parameters(),
            "steps": run.steps().reset_index(),
            "updates": run.updates(),
            "nodes": pd.concat(
                [run.nodes(s)[["node", "value", "grad"]].assign(step=s) for s in range(6)],
                ignore_index=True,
            )[["step", "node", "value", "grad"]],
            "graphs": run.graph(0).drop(columns="parents"),
        }
        files = {p.name for p in run.to_parquet(tmp_path / "pq")}
        run.to_csv(tmp_path / "csv")
    assert files == {"run.json", *(f"{n}.parquet" for n in expected)}
    for name, want in expected.items():
        got = pd.read_parquet(tmp_path / "pq" / f"{name}.parquet")
        if name == "graphs":
            assert got["graph_key"].nunique() == 1
            got = got.drop(columns="graph_key")
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
        for col in want.select_dtypes("float64"):
            assert_bits(got[col], want[col], f"{name}.{col} (parquet)")

        dtypes = {c: t for c, t in want.dtypes.items()}
        na = {c: [""] for c, t in want.dtypes.items() if t != STR}
        got = pd.read_csv(
            tmp_path / "csv" / f"{name}.csv",
            dtype={"graph_key": I8, **dtypes},
            keep_default_na=False,
            na_values=na,
        )
        if name == "graphs":
            got = got.drop(columns="graph_key")
        # CSV keeps every value (-0.0 and infinities too); a NaN comes back plain.
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=f"{name}.csv")
        for col in want.select_dtypes("float64"):
            w, g = want[col].to_numpy(), got[col].to_numpy()
            assert_bits(g[~np.isnan(g)], w[~np.isnan(w)], f"{name}.{col} (csv)")
    info = json.loads((tmp_path / "pq" / "run.json").read_text())
    assert info["name"] == "bits" and info["steps"] == 6


# -- the SQL queries of the README ---------------------------------------------------------

LOSS_CURVES = """
SELECT r.name, r.id, m.step, m.value AS loss
FROM runs r JOIN metrics m ON m.run_key = r.run_key
WHERE r.experiment = 'demo' AND m.name = 'loss'
ORDER BY r.started_at, r.id, m.step
"""

MAX_GRAD_PER_LAYER = """
SELECT r.id, u.step, p.layer, max(abs(u.grad)) AS max_abs_grad
FROM runs r
JOIN updates u ON u.run_key = r.run_key
JOIN parameters p ON p.run_key = u.run_key AND p.idx = u.param
WHERE r.name = 'toy' AND p.layer IS NOT NULL
GROUP BY r.id, u.step, p.layer
ORDER BY r.id, u.step, p.layer
"""

NAN_RUNS = """
SELECT r.id, r.name, r.experiment, min(m.step) AS first_nan_step
FROM runs r JOIN metrics m ON m.run_key = r.run_key
WHERE m.name = 'loss' AND m.value IS NULL
GROUP BY r.id, r.name, r.experiment
ORDER BY r.name
"""


def test_readme_sql_queries(db_url):
    first = train("toy", 3, db_url, name="toy")
    train("toy", 2, db_url, name="toy-b", seed=7)
    nan_id = record_bits_run(db_url, name="diverged")["id"]
    with tracer.connect(db_url, readonly=True) as store:
        engine = store.engine
        curves = pd.read_sql(LOSS_CURVES, engine)
        assert curves.columns.tolist() == ["name", "id", "step", "loss"]
        assert curves["name"].tolist() == ["toy"] * 3 + ["toy-b"] * 2
        for name, group in curves.groupby("name"):
            assert_bits(group["loss"], store.run(name).metrics()["loss"], name)

        grads = pd.read_sql(MAX_GRAD_PER_LAYER, engine)
        assert grads.columns.tolist() == ["id", "step", "layer", "max_abs_grad"]
        assert set(grads["id"]) == {first}
        run = store.run(first)
        upd = run.updates().merge(
            run.parameters()[["idx", "layer"]], left_on="param", right_on="idx"
        )
        want = upd.assign(g=upd["grad"].abs()).groupby(["step", "layer"])["g"].max().reset_index()
        assert grads[["step", "layer"]].astype("int64").values.tolist() == (
            want[["step", "layer"]].astype("int64").values.tolist()
        )
        assert_bits(grads["max_abs_grad"], want["g"], "max |grad|")

        nan = pd.read_sql(NAN_RUNS, engine)
        assert nan["id"].tolist() == [nan_id]
        loss = store.run("diverged").metrics()["loss"]
        assert int(nan["first_nan_step"].iloc[0]) == int(loss[loss.isna()].index[0])


def test_readme_shows_exactly_these_queries():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for sql in (LOSS_CURVES, MAX_GRAD_PER_LAYER, NAN_RUNS):
        assert sql.strip() in readme


class _Affine(Module):
    """A model that is not an MLP: its parameters are grouped by their name prefix."""

    def __init__(self):
        self.w = [Value(0.5), Value(-0.25)]
        self.b = Value(0.1)

    def named_parameters(self):
        return [("encoder.w.0", self.w[0]), ("encoder.w.1", self.w[1]), ("head", self.b)]

    def __call__(self, x):
        return self.w[0] * x[0] + self.w[1] * x[1] + self.b


@pytest.mark.parametrize("model", ["module", "list"])
def test_parameter_roles_of_models_that_are_not_an_mlp(db_url, model):
    net = _Affine()
    watched = net if model == "module" else [*net.w, net.b]
    with tracer.record("other", db=db_url) as rec:
        rec.watch(watched)
        loss = (net([1.0, 2.0]) - 1.0) ** 2
        loss.backward()
        rec.log(loss)
    with tracer.connect(db_url, readonly=True) as store:
        params = store.run("other").parameters()
    if model == "module":
        assert params["name"].tolist() == ["encoder.w.0", "encoder.w.1", "head"]
        assert params["group"].tolist() == ["encoder.w", "encoder.w", "parameters"]
    else:
        assert params["name"].tolist() == ["p0", "p1", "p2"]
        assert params["group"].tolist() == ["parameters"] * 3
    assert params["kind"].tolist() == ["other"] * 3
    assert params["layer"].isna().all() and params["input"].isna().all()


def test_metrics_of_sparse_and_stray_rows(db_url):
    """A metric logged every third step leaves NaN between; a metric row with no
    steps row (written by hand) still shows, with wall_time NaN; since= keeps
    only later steps and drops metrics with nothing after it."""
    p = Value(1.0)
    with tracer.record("sparse", db=db_url) as run:
        run.watch([p])
        for k in range(7):
            extra = {"val": -0.0 - k} if k % 3 == 0 else {}
            if k < 2:
                extra["early"] = float(k)
            run.log(loss=float(k) / 2, **extra)
    with tracer.connect(db_url) as store:
        key = store.run("sparse").key
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO metrics (run_key, name, step, value) VALUES (:k, 'loss', 9, 4.5)"
                ),
                {"k": key},
            )
        m = store.run("sparse").metrics()
        assert m.columns.tolist() == ["early", "loss", "val", "wall_time"]
        assert m.index.tolist() == [0, 1, 2, 3, 4, 5, 6, 9]
        assert m["loss"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.5]
        val = m["val"].to_numpy()
        assert np.isnan(val[[1, 2, 4, 5, 7]]).all()
        assert val[[0, 3, 6]].tolist() == [-0.0, -3.0, -6.0] and math.copysign(1, val[0]) == -1
        assert m["early"].iloc[:2].tolist() == [0.0, 1.0] and m["early"].iloc[2:].isna().all()
        assert m["wall_time"].iloc[:7].gt(1.7e9).all() and math.isnan(m["wall_time"].iloc[7])
        later = store.run("sparse").metrics(since=4)
        assert later.columns.tolist() == ["loss", "val", "wall_time"]
        assert later.index.tolist() == [5, 6, 9] and later["loss"].tolist() == [2.5, 3.0, 4.5]
