"""The recorder's write path: what a training run logs is what the database gives back.

Every comparison is bit for bit (uint64 views of float64), against values taken
in-process from ``loss.topo()`` and the parameters at log time. Each test with
``db_url`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from gradtrace.engine import Value, make_moons, mse, structure
from gradtrace.tracer.recording import demo
from gradtrace.tracer.recording.demo import moons_loss, setup
from helpers.trace import assert_steps_match, bits, snapshot, table_counts, train

from gradtrace import tracer

BATCHES = [range(0, 8), range(8, 16), range(16, 20)]  # sizes 8, 8, 4: two graph shapes


def test_moons_round_trip_every_node_every_step(db_url):
    """A moons model trained on minibatches of two sizes: every node's value and grad
    of every step, every update, every metric; one stored graph per distinct shape."""
    model, _, opt, _ = setup("moons", steps=4, seed=3)
    X, y = make_moons(100, noise=0.1, seed=3)
    params = model.parameters()
    sizes = [16, 16, 8, 16]  # shapes A A B A
    expected, shapes = [], []
    with tracer.record("moons-mb", db=db_url, config={"sizes": sizes}) as run:
        run.watch(model, optimizer=opt)
        for n in sizes:
            loss, acc = moons_loss(model, X[:n], y[:n])
            model.zero_grad()
            loss.backward()
            lr = opt.lr
            run.log(loss, acc=acc, lr=lr)
            data, grad, n_nodes, before, pgrad = snapshot(loss, params)
            _, ops, a, b = structure(loss)
            shapes.append((ops, a, b))
            opt.step()
            after = np.array([p.data for p in params])
            expected.append((loss.data, acc, lr, data, grad, n_nodes, before, pgrad, after))

    with tracer.connect(db_url) as store:
        view = store.run("moons-mb")
        assert view.status == "finished" and view.info["steps"] == 4
        assert view.model_spec == model.spec()
        names = [n for n, _ in model.named_parameters()]
        assert view.parameters()["name"].tolist() == names
        steps = view.steps()
        updates = view.updates()
        metrics = view.metrics()
        for k, (loss, acc, lr, data, grad, n_nodes, before, pgrad, after) in enumerate(expected):
            nodes = view.nodes(k)
            assert len(nodes) == n_nodes
            assert (bits(nodes["value"]) == data).all(), f"node values of step {k}"
            assert (bits(nodes["grad"]) == grad).all(), f"node grads of step {k}"
            graph = view.graph(k)
            ops, a, b = shapes[k]
            assert graph["op"].tolist() == ops
            assert graph["a"].fillna(-1).tolist() == a and graph["b"].fillna(-1).tolist() == b
            assert bits(metrics.loc[k, ["loss", "acc", "lr"]].to_numpy(np.float64)).tolist() == (
                bits([loss, acc, lr]).tolist()
            )
            u = updates[updates["step"] == k].sort_values("param")
            assert u["name"].tolist() == names
            assert (bits(u["value_before"]) == bits(before)).all()
            assert (bits(u["grad"]) == bits(pgrad)).all()
            assert (bits(u["value_after"]) == bits(after)).all()
            assert (bits(u["lr"]) == bits(lr)).all()
        # Parameter leaves carry their names as labels in the stored graph.
        leaf = view.graph(0).dropna(subset=["param"])
        assert set(leaf["label"]) <= set(names) and len(leaf) > 0

        with store.engine.connect() as conn:
            graphs = conn.execute(
                sa.text("SELECT graph_key, n_nodes, first_step FROM graphs ORDER BY first_step")
            ).all()
            tables = set(sa.inspect(conn).get_table_names())
        assert [(g.n_nodes, g.first_step) for g in graphs] == [
            (expected[0][5], 0),
            (expected[2][5], 2),
        ]
        assert "graph_nodes" not in tables  # the shape is stored once, in graphs
        a_key, b_key = graphs[0].graph_key, graphs[1].graph_key
        assert steps["graph_key"].tolist() == [a_key, a_key, b_key, a_key]


def test_a_graph_changed_only_in_wiring_or_exponent_gets_its_own_shape(db_url):
    """Same node count and op sequence, different structure: the recorder must not
    take step k's nodes for another step's shape (node i would mean another node)."""
    w = [Value(0.5, label="w0"), Value(-1.5, label="w1")]

    def program(k: int) -> Value:
        x, y = w
        if k in (0, 2, 5):
            return x * y + y
        if k == 1:
            return x * y + x  # the + reads x instead of y
        if k == 3:
            return (x * y) ** 2
        return (x * y) ** 3  # k == 4: only the exponent differs from step 3

    expected = []
    with tracer.record("rewired", db=db_url) as run:
        run.watch(w)
        for k in range(6):
            loss = program(k)
            for p in w:
                p.grad = 0.0
            loss.backward()
            run.log(loss)
            nodes, ops, a, b = structure(loss)
            expected.append((ops, a, b, [v.exponent for v in nodes], [v.data for v in nodes]))
            for p in w:
                p.data -= 0.1 * p.grad
    with tracer.connect(db_url) as store:
        view = store.run("rewired")
        keys = view.steps()["graph_key"].tolist()
        assert keys[0] == keys[2] == keys[5]
        assert len({keys[0], keys[1], keys[3], keys[4]}) == 4
        for k, (ops, a, b, exps, data) in enumerate(expected):
            graph = view.graph(k)
            assert graph["op"].tolist() == ops
            assert graph["a"].fillna(-1).tolist() == a and graph["b"].fillna(-1).tolist() == b
            pows = [x for x in exps if x is not None]
            assert graph["arg"].dropna().tolist() == pows
            assert (bits(view.nodes(k)["value"]) == bits(data)).all()


def test_toy_demo_records_what_it_trains(db_url):
    run_id = demo.train("toy", steps=3, db=db_url, seed=5)
    model, loss_fn, opt, _ = setup("toy", 3, 5)
    losses = []
    for _ in range(3):
        loss, _ = loss_fn()
        model.zero_grad()
        loss.backward()
        losses.append(loss.data)
        n_nodes = len(loss.topo())
        opt.step()
    with tracer.connect(db_url) as store:
        view = store.run(run_id)
        assert view.status == "finished"
        assert (bits(view.metrics()["loss"]) == bits(losses)).all()
        assert view.nodes_per_step() == n_nodes
        assert view.traced_steps() == [0, 1, 2]
        assert view.config["steps"] == 3


@pytest.mark.parametrize("opt", ["sgd", "adam", "hand"])
def test_updates_captured_however_applied(db_url, opt):
    """Engine SGD (scheduled lr), Adam, and ``p.data += -lr * p.grad`` by hand."""
    with tracer.record(f"upd-{opt}", db=db_url) as run:
        records = list(train(6, run, opt=opt, batches=BATCHES))
    with tracer.connect(db_url) as store:
        view = store.run(f"upd-{opt}")
        assert_steps_match(view, records)
        updates = view.updates()
        assert len(updates) == 6 * len(records[0].before)
        wide = {
            c: updates.pivot(index="step", columns="param", values=c)
            for c in ("value_before", "value_after", "lr")
        }
        # The chain: what a step left is what the next one started from.
        after, before = wide["value_after"].to_numpy(), wide["value_before"].to_numpy()
        assert (bits(after[:-1]) == bits(before[1:])).all()
        # The last step's after-values were written by close().
        assert (bits(after[-1]) == bits(records[-1].after)).all()
        assert (bits(wide["lr"].to_numpy()[:, 0]) == bits([r.lr for r in records])).all()
        changed = (after != before).any(axis=1)
        assert changed.all(), "every step moved some parameter"


def test_capture_params_writes_no_traces(db_url):
    with tracer.record("params-only", db=db_url, capture="params") as run:
        records = list(train(4, run))
    with tracer.connect(db_url) as store:
        view = store.run("params-only")
        assert view.info["capture"] == "params"
        counts = table_counts(store.engine, view.key)
        n_params = len(records[0].before)
        assert counts == {
            "steps": 4,
            "metrics": 8,
            "updates": 4 * n_params,
            "traces": 0,
            "graphs": 0,
            "parameters": n_params,
        }
        assert view.steps()["graph_key"].isna().all()
        assert_steps_match(view, records, traced=False)
        with pytest.raises(tracer.GradtraceError, match="no node trace"):
            view.nodes(0)


def test_every_k_traces_every_kth_step_but_logs_all(db_url):
    with tracer.record("every3", db=db_url, every=3) as run:
        records = list(train(7, run))
    with tracer.connect(db_url) as store:
        view = store.run("every3")
        assert view.info["capture"] == "nodes/3"
        assert view.traced_steps() == [0, 3, 6]
        assert_steps_match(view, records, traced=False)
        for k in (0, 3, 6):
            nodes = view.nodes(k)
            assert (bits(nodes["value"]) == records[k].node_data).all()
            assert (bits(nodes["grad"]) == records[k].node_grad).all()
        counts = table_counts(store.engine, view.key)
        assert counts["metrics"] == 14 and counts["updates"] == 7 * len(records[0].before)
        assert counts["traces"] == 3


def test_background_writer_gives_the_same_data(db_url):
    for background in (False, True):
        with tracer.record(f"bg-{background}", db=db_url, background=background) as run:
            records = list(train(9, run, batches=BATCHES))
    with tracer.connect(db_url) as store:
        sync, bg = store.run("bg-False"), store.run("bg-True")
        assert_steps_match(bg, records)
        assert table_counts(store.engine, sync.key) == table_counts(store.engine, bg.key)
        pd_testing = pytest.importorskip("pandas.testing")
        pd_testing.assert_frame_equal(
            sync.metrics().drop(columns="wall_time"), bg.metrics().drop(columns="wall_time")
        )
        pd_testing.assert_frame_equal(sync.updates(), bg.updates())
        pd_testing.assert_frame_equal(sync.values(), bg.values())
        pd_testing.assert_frame_equal(sync.gradients(), bg.gradients())
        for k in range(9):
            a, b = sync.nodes(k), bg.nodes(k)
            assert (bits(a["value"]) == bits(b["value"])).all()
            assert (bits(a["grad"]) == bits(b["grad"])).all()
            assert a["op"].tolist() == b["op"].tolist()
        assert bg.status == "finished" and bg.info["steps"] == 9


# -- misuse ---------------------------------------------------------------------


def test_log_after_close_and_steps_out_of_order(db_url):
    x = Value(1.0)
    run = tracer.record("order", db=db_url)
    run.watch([x])
    assert run.log(x * 2, step=5) == 5
    for bad in (5, 3, -1):
        with pytest.raises(tracer.RecorderError, match="greater than the last logged step"):
            run.log(x * 2, step=bad)
    for bad in ("6", 6.0, True, 2**31):
        with pytest.raises(tracer.InvalidArgument, match=r"step = .*omit step="):
            run.log(x * 2, step=bad)
    assert run.log(x * 3) == 6
    run.close()
    run.close()  # idempotent
    with pytest.raises(tracer.RecorderError, match="closed"):
        run.log(x * 2)
    with pytest.raises(tracer.RecorderError, match="closed"):
        run.watch([x])
    with tracer.connect(db_url) as store:
        view = store.run("order")
        assert view.steps().index.tolist() == [5, 6]
        assert view.updates()["step"].tolist() == [5, 6]
        assert view.status == "finished"


def test_bad_metric_writes_nothing_for_that_step(db_url):
    x = Value(1.0)
    with tracer.record("metrics", db=db_url) as run:
        run.watch([x])
        with pytest.raises(tracer.ConfigError, match="not a number"):
            run.log(x, acc="high")
        with pytest.raises(tracer.ConfigError, match="too large"):
            run.log(x, big=10**400)
        with pytest.raises(tracer.ConfigError, match="metric name"):
            run.log(x, **{"": 1.0})
        assert run.log(x, acc=np.float32(0.5), n=np.int64(3)) == 0
    with tracer.connect(db_url) as store:
        metrics = store.run("metrics").metrics()
        assert metrics.index.tolist() == [0]
        assert metrics.loc[0, ["acc", "loss", "n"]].tolist() == [0.5, 1.0, 3.0]


@pytest.mark.parametrize(
    "config",
    [
        {"model": object()},
        {"lr": float("nan")},
        {"lr": float("inf")},
        {"nested": {"deep": [1, {2}]}},
        {1: "not a string key"},
        ["not", "a", "dict"],
    ],
    ids=["object", "nan", "inf", "set", "int-key", "list"],
)
def test_config_that_is_not_json_is_refused_before_writing(db_url, config):
    tracer.record("good", db=db_url, config={"lr": 0.1}).close()
    with pytest.raises(tracer.ConfigError, match="config"):
        tracer.record("bad", db=db_url, config=config)
    with tracer.connect(db_url) as store:
        assert store.runs()["name"].tolist() == ["good"]


def test_other_bad_arguments_are_refused_before_writing(db_url):
    tracer.record("good", db=db_url).close()
    for kwargs in (
        {"capture": "everything"},
        {"every": 0},
        {"seed": "abc"},
        {"tags": ["ok", ""]},
        {"experiment": ""},
    ):
        with pytest.raises(tracer.ConfigError):
            tracer.record("bad", db=db_url, **kwargs)
    with pytest.raises(tracer.ConfigError, match=r"name = 'xxx.*201 characters"):
        tracer.record("x" * 201, db=db_url)
    with tracer.connect(db_url) as store:
        assert store.runs()["name"].tolist() == ["good"]


def test_leaf_kinds_read_back_per_node(db_url):
    """A watched parameter, an input, a constant and a target, each read back with its
    kind; computed nodes have none, and a graph stored before kinds says "leaf"."""
    w, x = Value(0.5, label="w"), Value(2.0, label="x")
    assert w.kind == "input"  # the engine cannot know w is a parameter; watch() does
    with tracer.record("kinds", db=db_url) as run:
        run.watch([w])
        loss = mse([w * x + 1.5], [3.0])  # 1.5 a constant, 3.0 the target
        loss.backward()
        run.log(loss)
        expected = ["parameter" if v is w else v.kind for v in loss.topo()]
    with tracer.connect(db_url) as store:
        view = store.run("kinds")
        for frame in (view.graph(0), view.nodes(0)):
            assert frame["kind"].tolist() == expected
        nodes = view.nodes(0)
        leaf = nodes[nodes["op"] == ""]
        kind_of = dict(zip(leaf["value"], leaf["kind"], strict=True))
        assert kind_of[0.5] == "parameter" and kind_of[2.0] == "input"
        assert kind_of[1.5] == "constant" and kind_of[3.0] == "target"
        assert (nodes.loc[nodes["op"] != "", "kind"] == "").all()
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE graphs SET kinds = NULL"))
    with tracer.connect(db_url) as store:
        old = store.run("kinds").graph(0)
        assert set(old.loc[old["op"] == "", "kind"]) == {"leaf"}
        assert set(old.loc[old["op"] != "", "kind"]) == {""}
