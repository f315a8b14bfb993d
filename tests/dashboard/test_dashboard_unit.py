"""The dashboard's pure helpers, and its app without a browser.

python -m pytest tests/test_dashboard_unit.py -q
"""

from __future__ import annotations

import ast
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.utils
import pytest
from gradtrace.dashboard import (
    create_app,
    decision,
    figures,
    graphs,
    graphview,
    groups,
    nodetable,
    rows,
    series,
)
from gradtrace.dashboard.context import LRU, context_for
from gradtrace.engine import MLP, Value, make_moons
from gradtrace.tracer.recording.demo import train
from helpers.dash import call, find

from gradtrace import dashboard, tracer

ROOT = Path(dashboard.__file__).resolve().parent


# -- small graphs built with the engine, read back the way RunView.nodes() has them ------
def node_table(root: Value, params: list[Value]) -> pd.DataFrame:
    """A RunView.nodes()-shaped table of ``root``'s graph (no database)."""
    from gradtrace.engine import structure

    nodes, ops, a, b = structure(root)
    where = {id(p): i for i, p in enumerate(params)}
    return pd.DataFrame(
        {
            "node": np.arange(len(nodes)),
            "op": ops,
            "label": [v.label for v in nodes],
            "a": pd.array([x if x >= 0 else None for x in a], dtype="Int64"),
            "b": pd.array([x if x >= 0 else None for x in b], dtype="Int64"),
            "param": pd.array([where.get(id(v)) for v in nodes], dtype="Int64"),
            "kind": ["parameter" if id(v) in where else v.kind for v in nodes],
            "value": [v.data for v in nodes],
            "grad": [v.grad for v in nodes],
        }
    )


def parameter_table(model: MLP) -> pd.DataFrame:
    names = [n for n, _ in model.named_parameters()]
    parts = [n.split(".") for n in names]
    return pd.DataFrame(
        {
            "idx": range(len(names)),
            "name": names,
            "layer": pd.array([int(p[1]) for p in parts], dtype="Int64"),
            "neuron": pd.array([int(p[3]) for p in parts], dtype="Int64"),
            "kind": ["weight" if p[4] == "w" else "bias" for p in parts],
        }
    )


@pytest.fixture
def moons_graph():
    """A 2-3-1 MLP's hinge loss over 5 moons points, as a node table."""
    from gradtrace.engine import hinge

    X, y = make_moons(5, noise=0.1, seed=2)
    model = MLP(2, [3, 1], seed=4)
    scores = [model([Value(a), Value(b)]) for a, b in X]
    loss = hinge(scores, y)
    loss.backward()
    return node_table(loss, model.parameters()), parameter_table(model), X, y


# -- series helpers --------------------------------------------------------------------
def test_ema_matches_bias_corrected_recurrence():
    x = [1.0, 2.0, 4.0, 8.0]
    w = 0.5
    out = series.ema(x, w)
    # s_t = w s_{t-1} + (1-w) x_t, divided by 1 - w^(t+1)
    expected, s = [], 0.0
    for t, v in enumerate(x):
        s = w * s + (1 - w) * v
        expected.append(s / (1 - w ** (t + 1)))
    np.testing.assert_allclose(out, expected)
    assert out.tolist() == pytest.approx([1.0, 5 / 3, 3.0, 17 / 3])
    np.testing.assert_array_equal(series.ema(x, 0.0), x)


def test_ema_breaks_at_nan_and_inf_and_resumes_after():
    out = series.ema([1.0, math.nan, 3.0, math.inf, 3.0], 0.5)
    assert out[0] == 1.0
    assert np.isnan(out[1]) and np.isnan(out[3])  # a gap, not the last value carried
    assert out[2] == pytest.approx(7 / 3)  # resumes from the finite points before
    assert out[4] == pytest.approx((0.25 * 1.0 + 0.5 * 3.0 + 3.0) / 1.75)
    with pytest.raises(ValueError):
        series.ema([1.0], 1.0)


def test_downsample_keeps_ends_and_limit():
    assert series.downsample(range(5), 300) == [0, 1, 2, 3, 4]
    picked = series.downsample(range(10_000), 300)
    assert len(picked) == 300 and picked[0] == 0 and picked[-1] == 9999
    assert picked == sorted(set(picked))
    assert series.downsample([3, 10, 11, 50, 90], 3) == [3, 11, 90]
    assert series.downsample([], 3) == []


def test_histogram_counts_finite_values_and_reports_the_rest():
    centers, counts, bad = groups.histogram(np.array([0.0, 1.0, 1.0, math.nan, math.inf]), bins=2)
    assert centers.tolist() == [0.25, 0.75] and counts.tolist() == [1, 2] and bad == 2
    centers, counts, _ = groups.histogram(np.array([3.0, 3.0]), bins=2)
    assert counts.sum() == 2 and centers.tolist() == pytest.approx([2.75, 3.25])


@pytest.mark.parametrize(
    "values",
    [
        [-1e300, 1e300, math.inf, math.nan],
        [-1.79e308, 1.79e308],  # max - min overflows to inf
        [1e300, 1e300 * (1 + 1e-15)],  # a range narrower than the bins can split
        [1.79e308, 1.79e308],
        [5e-324, 1e-323],
    ],
)
def test_histogram_near_the_float_limit_counts_every_finite_value(values):
    x = np.array(values)
    centers, counts, bad = groups.histogram(x, bins=30)
    assert counts.sum() == np.isfinite(x).sum() and bad == (~np.isfinite(x)).sum()
    assert np.isfinite(centers).all()


def test_minmax_picks_keep_spikes_gaps_and_ends():
    y = np.sin(np.arange(10_000) / 300.0)
    y[4321] = 50.0
    y[8000] = -50.0
    y[6000] = math.nan
    picks = series.minmax_picks(y, 500)
    assert len(picks) <= 2 * 500 + 2 + 1
    assert {0, 4321, 8000, 6000, 9999} <= set(picks.tolist())
    assert picks.tolist() == sorted(set(picks.tolist()))
    np.testing.assert_array_equal(series.minmax_picks([1.0, 2.0, 3.0], 500), [0, 1, 2])


def test_config_diff_lists_only_differing_keys():
    runs = pd.DataFrame(
        {
            "id": ["a", "b"],
            "name": ["x", "y"],
            "config.lr": [0.1, 0.2],
            "config.steps": [100, 100],
            "config.layers": [[16, 16], [16, 8]],
            "config.only_a": ["yes", math.nan],
        }
    )
    diff = rows.config_diff(runs)
    assert diff["key"].tolist() == ["lr", "layers", "only_a"]
    assert diff.loc[0, "a"] == 0.1 and diff.loc[0, "b"] == 0.2
    assert diff.loc[1, "b"] == "[16, 8]"
    assert diff.loc[2, "b"] is None


def test_plotly_text_escapes_tags():
    assert figures.plotly_text("<script>alert(1)</script> & <b>") == (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;"
    )


def test_cells():
    assert rows.cell(math.nan) is None and rows.cell(math.inf) == "inf"
    assert rows.cell(np.int64(3)) == 3 and rows.cell([1, 2]) == "[1, 2]"
    assert rows.cell(pd.Timestamp("2026-01-02 03:04:05", tz="UTC")) == "2026-01-02 03:04:05"


# -- decision boundary -----------------------------------------------------------------
def test_decision_grid_is_the_engine_prediction():
    model = MLP(2, [4, 1], seed=7)
    values = [p.data for p in model.parameters()]
    xs, ys, z = decision.decision_grid(model.spec(), values, (-1.0, 1.0, -2.0, 0.0), n=5)
    assert xs.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert ys.tolist() == [-2.0, -1.5, -1.0, -0.5, 0.0]
    assert z.shape == (5, 5)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            assert z[i, j] == model.predict([x, y])  # row = y, column = x, exactly


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_decision_grid_equals_predict_for_a_deep_model(activation):
    model = MLP(2, [8, 8, 1], activation=activation, seed=3)
    values = [p.data for p in model.parameters()]
    xs, ys, z = decision.decision_grid(model.spec(), values, (-2.0, 2.0, -1.0, 1.5), n=7)
    expected = [[model.predict([x, y]) for x in xs.tolist()] for y in ys.tolist()]
    assert z.tolist() == expected


def test_decision_grid_uses_the_given_parameters():
    model = MLP(2, [4, 1], seed=7)
    zeros = [0.0] * len(model.parameters())
    _, _, z = decision.decision_grid(model.spec(), zeros, (-1, 1, -1, 1), n=3)
    assert (z == 0.0).all()


def test_grid_size_and_bounds():
    assert decision.grid_size(337) == 36
    assert decision.grid_size(41) == 40
    assert 12 <= decision.grid_size(10_000) < 36
    X = np.array([[0.0, -1.0], [2.0, 1.0]])
    assert decision.bounds(X) == (-0.5, 2.5, -1.5, 1.5)
    assert decision.bounds(np.empty((0, 2))) == (-2.0, 2.0, -2.0, 2.0)


# -- graphs ----------------------------------------------------------------------------
def test_children_index():
    x = Value(3.0)
    nodes = node_table(x * x + 1, [])  # ['', '*', '', '+']
    children = graphs.children_index(nodes)
    assert children.of(0).tolist() == [1]  # x*x counts once
    assert children.of(1).tolist() == [3]
    assert children.of(2).tolist() == [3]
    assert children.of(3).tolist() == []
    assert graphs.parents_of(children, 3) == [1, 2]
    assert graphs.parents_of(children, 1) == [0]


def test_neighbourhood_is_breadth_first_and_capped():
    a, b, c = Value(1.0), Value(2.0), Value(3.0)
    root = (a * b + c).relu()  # nodes: a b * c + relu
    nodes = node_table(root, [])
    children = graphs.children_index(nodes)
    ops = nodes["op"].tolist()
    mul = ops.index("*")
    shown = graphs.neighbourhood(children, mul, depth=1)
    assert shown[0] == mul
    assert sorted(ops[i] for i in shown) == sorted(["*", "", "", "+"])
    assert len(graphs.neighbourhood(children, mul, depth=2)) == 6
    assert graphs.neighbourhood(children, mul, depth=2, cap=3) == shown[:3]
    with pytest.raises(ValueError, match="does not exist"):
        graphs.neighbourhood(children, 99)


def test_neuron_subgraph_of_one_example(moons_graph):
    nodes, params, X, _ = moons_graph
    children = graphs.children_index(nodes)
    shown = graphs.neuron_subgraph(nodes, children, params, 0, 1, 3)
    rows = nodes.iloc[shown]
    # bias, 2 adds, 2 muls, 2 weights, 2 inputs, relu
    assert len(shown) == 10
    assert sorted(rows["op"]) == sorted(["", "+", "*", "", "", "+", "*", "", "", "relu"])
    names = set(params.loc[rows["param"].dropna().astype(int), "name"])
    assert names == {"layers.0.neurons.1.b", "layers.0.neurons.1.w.0", "layers.0.neurons.1.w.1"}
    inputs = rows[(rows["op"] == "") & rows["param"].isna()]["value"].tolist()
    assert sorted(inputs) == sorted(X[3])
    # The output neuron (linear) of example 0: bias, 3 adds, 3 muls, 3 weights, 3 relus.
    out = graphs.neuron_subgraph(nodes, children, params, 1, 0, 0)
    assert len(out) == 13 and "relu" in set(nodes.iloc[out]["op"])
    with pytest.raises(ValueError, match=r"out of range 0\.\.4"):
        graphs.neuron_subgraph(nodes, children, params, 0, 1, 5)
    with pytest.raises(ValueError, match="no neuron 9"):
        graphs.neuron_subgraph(nodes, children, params, 0, 9, 0)


def test_training_inputs_and_labels_read_off_the_graph(moons_graph):
    nodes, params, X, y = moons_graph
    children = graphs.children_index(nodes)
    np.testing.assert_array_equal(graphs.training_inputs(nodes, children, params), X)
    assert graphs.hinge_labels(nodes, children, params).tolist() == y


def test_cyto_elements(moons_graph):
    nodes, params, _, _ = moons_graph
    children = graphs.children_index(nodes)
    shown = graphs.neuron_subgraph(nodes, children, params, 0, 0, 0)
    elements = graphview.cyto_elements(nodes, children, shown, params["name"].tolist(), shown[:1])
    vertices = [e for e in elements if "source" not in e["data"]]
    edges = [e for e in elements if "source" in e["data"]]
    assert [int(e["data"]["id"]) for e in vertices] == shown
    assert vertices[0]["data"]["name"] == "layers.0.neurons.0.b"
    assert vertices[0]["classes"] == "param focus"
    assert len(edges) == 9  # 2 per mul, 2 per add, 1 into relu
    assert all(e["data"]["color"].startswith(("rgb", "#")) for e in vertices)


def test_leaf_kinds_drawn_and_keyed():
    """Each leaf kind gets its own class, the node data says the kind, and the colour
    key shows a swatch for each with the border the graph draws."""
    from gradtrace.dashboard.run import nodes as graph_section
    from gradtrace.engine import mse

    w, x = Value(0.5, label="w"), Value(2.0, label="x")
    nodes = node_table(mse([w * x + 1.5], [3.0]), [w])
    children = graphs.children_index(nodes)
    elements = graphview.cyto_elements(nodes, children, nodes["node"].tolist(), ["w"])
    vertices = [e for e in elements if "source" not in e["data"]]
    drawn = {float(e["data"]["value"]): (e["classes"], e["data"]["kind"]) for e in vertices}
    assert drawn[0.5] == ("param", "parameter") and drawn[2.0] == ("input", "input")
    assert drawn[1.5] == ("constant", "constant") and drawn[3.0] == ("target", "target")
    computed = [e for e in vertices if e["data"]["op"]]
    assert computed and all(e["classes"] == "op" and e["data"]["kind"] == "" for e in computed)
    sheet = {rule["selector"]: rule["style"] for rule in graphview.STYLESHEET}
    assert sheet[".target"]["border-color"] == "#9333ea"
    table = nodetable.columns(nodes, ["w"])  # the node table: a leaf's op is its kind
    ops = dict(zip(table["value"].tolist(), table["op"].tolist(), strict=True))
    assert (ops[0.5], ops[2.0], ops[1.5], ops[3.0]) == ("parameter", "input", "constant", "target")

    section = graph_section.layout({"traced": True, "capture": "nodes"}).to_plotly_json()
    key = json.loads(json.dumps(section, cls=plotly.utils.PlotlyJSONEncoder))
    spans = find(key, "run-g-key")["props"]["children"]
    swatches = {s["props"]["children"]: s["props"].get("style") for s in spans}
    swatches = {text: style for text, style in swatches.items() if style}
    assert list(swatches) == ["parameter", "input", "target", "constant"]
    assert swatches["target"] == {"border": "4px double #9333ea"}


# -- node table ------------------------------------------------------------------------
def test_node_table_sorts_nonfinite_first_and_filters():
    cols = {
        "node": np.arange(4),
        "op": np.array(["leaf", "*", "+", "relu"], dtype=object),
        "label": np.array(["w", "", "", ""], dtype=object),
        "value": np.array([1.0, 2.0, 3.0, 4.0]),
        "grad": np.array([0.5, -3.0, math.nan, 1.0]),
        "abs_grad": np.array([0.5, 3.0, math.nan, 1.0]),
    }
    desc = nodetable.select(cols, {}, [{"colId": "abs_grad", "sort": "desc"}])
    assert desc.tolist() == [2, 1, 3, 0]
    asc = nodetable.select(cols, {}, [{"colId": "op", "sort": "asc"}])
    assert cols["op"][asc].tolist() == ["*", "+", "leaf", "relu"]
    big = {"value": {"filterType": "number", "type": "greaterThan", "filter": 2.5}}
    assert nodetable.select(cols, big, []).tolist() == [2, 3]
    text = {"op": {"filterType": "text", "type": "contains", "filter": "EL"}}
    assert nodetable.select(cols, text, []).tolist() == [3]
    assert nodetable.number(math.inf) == "inf" and nodetable.number(1.5) == 1.5


def test_lru_makes_each_value_once_and_evicts():
    lru, calls = LRU(2), []
    for key in ("a", "a", "b", "c", "a"):
        lru.get(key, lambda k=key: calls.append(k) or k.upper())
    assert calls == ["a", "b", "c", "a"]


# -- the app without a browser ---------------------------------------------------------
@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("unit") / "runs.db")
    train("toy", 5, db)
    return db


def test_app_serves_pages_read_only(small_db):
    before = Path(small_db).read_bytes()
    app = create_app(small_db)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    deps = client.get("/_dash-dependencies").json
    outputs = " ".join(d["output"] for d in deps)
    for component in ("runs-grid", "run-loss", "run-w-history", "run-cyto", "run-boundary"):
        assert component in outputs
    store = context_for(app).store
    with pytest.raises(Exception, match=r"readonly|read-only|read only"):
        store.delete_run(store.runs().iloc[0]["id"])
    assert Path(small_db).read_bytes() == before


def test_serve_prints_the_url_and_binds_localhost(small_db, monkeypatch, capsys):
    params = inspect.signature(dashboard.serve).parameters
    assert params["host"].default == "127.0.0.1" and params["port"].default == 8050
    served = []
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: served.append(kw))
    dashboard.serve(small_db, port=8123)
    assert served == [{"host": "127.0.0.1", "port": 8123, "debug": False}]
    assert "http://127.0.0.1:8123/ " in capsys.readouterr().out
    run_id = tracer.connect(small_db, readonly=True).runs().iloc[0]["id"]
    dashboard.serve(small_db, open_run=run_id[:6])
    assert f"http://127.0.0.1:8050/run/{run_id} " in capsys.readouterr().out


def test_component_ids_are_prefixed_by_page():
    ids = []
    for path in (ROOT / "pages").glob("*.py"):
        page = path.stem
        for sub in [path, *((ROOT / "run").glob("*.py") if page == "run" else [])]:
            for node in ast.walk(ast.parse(sub.read_text())):
                if (
                    isinstance(node, ast.keyword)
                    and node.arg == "id"
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    ids.append((page, node.value.value))
    assert ids
    for page, cid in ids:
        assert cid.startswith(f"{page}-"), (page, cid)


def test_dashboard_reads_only_through_tracer():
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                root = name.split(".")[0]
                assert root not in ("sqlalchemy", "sqlite3", "psycopg"), (path, name)
                assert not name.startswith("tracer."), (path, name)  # the public API only
        text = path.read_text()
        assert "dangerously" not in text, path
    for path in (ROOT / "assets").glob("*.js"):
        assert "innerHTML" not in path.read_text()


def page(app, path: str, search: str = "") -> dict:
    """The page Dash renders at ``path`` (its layout as JSON), through the router."""
    values = {"_pages_location.pathname": path, "_pages_location.search": search}
    resp = call(app, "_pages_content.children", values, "_pages_location.pathname")
    return resp["_pages_content"]["children"]


def mount_below(app, tree) -> list:
    """The sections under a run page's curves, as the browser mounts them once the
    loss is drawn (it sends the run's id and the page's URL arguments)."""
    values = {
        "run-below-go.data": find(tree, "run-id")["props"]["data"],
        "run-below-args.data": find(tree, "run-below-args")["props"]["data"],
        "run-step.data": find(tree, "run-step")["props"]["data"],
    }
    return call(app, "run-below.children", values, "run-below-go.data")["run-below"]["children"]


def test_run_page_draws_header_and_curves_in_its_own_request(small_db):
    """The first paint is one request: header, meta, loss figure and slider at the
    URL's step are in the page; an unknown run gets a page that says so."""
    app = create_app(small_db)
    view = tracer.connect(small_db, readonly=True).run(
        tracer.connect(small_db, readonly=True).runs().iloc[0]["id"]
    )
    tree = page(app, f"/run/{view.id}", "?step=1")
    loss = find(tree, "run-loss")["props"]["figure"]
    expected = view.metrics()["loss"].tolist()
    assert loss["data"][0]["y"] == pytest.approx(expected)
    assert loss["layout"]["shapes"][0]["x0"] == 1  # the marker at the URL's step
    assert find(tree, "run-slider") is None  # below the fold: mounted after the first paint
    assert find(tree, "run-below")["props"]["children"][0]["props"]["className"] == "card"
    below = mount_below(app, tree)
    assert find(below, "run-slider")["props"]["value"] == 1
    meta = find(below, "run-meta")["props"]["data"]
    assert find(tree, "run-id")["props"]["data"] == view.id  # the one store of the run id
    assert "id" not in meta and meta["traced"] is True and meta["nin"] == 3
    assert meta["n_params"] == 41
    assert find(tree, "run-status")["props"]["children"] == view.status
    missing = page(app, "/run/no-such-run")
    assert "no run matches" in str(find(missing, "run-missing"))
    assert find(missing, "run-loss") is None


def test_headline_numbers_from_the_metrics():
    from gradtrace.dashboard.run.summary import headline

    metrics = pd.DataFrame(
        {"loss": [2.0, 0.5, math.nan, 0.75], "acc": [0.1, 0.9, math.nan, math.nan]},
        index=pd.Index([0, 3, 6, 9], name="step"),
    )
    h = headline(metrics)
    assert (h.loss_start, h.loss_final) == (2.0, 0.75)
    assert (h.loss_best, h.best_step) == (0.5, 3)  # NaN is never "best"
    assert h.acc_final == 0.9  # the last finite accuracy


def test_curves_patch_marker_and_axis_without_resending_points(small_db):
    app = create_app(small_db)
    run_id = tracer.connect(small_db, readonly=True).runs().iloc[0]["id"]
    values = {"run-id.data": run_id, "run-step.data": 2, "run-logy.value": ["log"]}
    # a slider move is the browser's alone: no server callback writes the curves
    slider = [k for k, v in app.callback_map.items() if "run-loss.figure" in k]
    assert all("run-slider" not in [i["id"] for i in app.callback_map[k]["inputs"]] for k in slider)
    resp = call(app, "run-loss.figure", values, "run-logy.value")
    patch = json.dumps(resp["run-loss"]["figure"])
    # the axis, and the marker where the slider is (the browser moved it unseen)
    assert '"log"' in patch and '"x0": 2' in patch and '"data"' not in patch


def test_zoom_redraws_the_loss_at_full_detail_inside_the_range(tmp_path):
    from gradtrace.dashboard import curvefigures

    db = str(tmp_path / "long.db")
    with tracer.record("long", db=db) as run:
        for k in range(3 * curvefigures.CURVE_BUCKETS):
            run.log(float(np.sin(k / 50.0)) + (5.0 if k == 1234 else 0.0))
    app = create_app(db)
    whole = curvefigures.loss_figure(context_for(app).run(run.id).metrics(), 0.0, False, None)[
        "data"
    ][0]
    assert len(whole["x"]) <= 2 * curvefigures.CURVE_BUCKETS + 2 and 1234 in whole["x"]
    values = {
        "run-id.data": run.id,
        "run-smooth.value": 0.0,
        "run-loss.relayoutData": {"xaxis.range[0]": 100, "xaxis.range[1]": 200},
    }
    resp = call(app, "run-loss.figure", values, "run-loss.relayoutData")
    raw = resp["run-loss"]["figure"]["operations"][0]["params"]["value"]
    assert raw["x"] == list(range(99, 202))  # every step, one beyond each edge


def test_heatmap_is_per_neuron_and_a_click_picks_its_weights(small_db):
    app = create_app(small_db)
    view = tracer.connect(small_db, readonly=True).run(
        tracer.connect(small_db, readonly=True).runs().iloc[0]["id"]
    )
    meta = {"traced": True}
    resp = call(
        app,
        "run-w-heatmap.figure",
        {"run-meta.data": meta, "run-id.data": view.id},
        "run-meta.data",
    )
    heat = resp["run-w-heatmap"]["figure"]["data"][0]
    params = view.parameters()
    assert heat["y"][0] == "L0 n0" and len(heat["y"]) == params.groupby(["layer", "neuron"]).ngroups
    grads = view.param_arrays(steps=heat["x"], which="grad")
    names = params.loc[(params["layer"] == 1) & (params["neuron"] == 2), "name"].tolist()
    row = heat["y"].index("L1 n2")
    expected = grads[names].abs().sum(axis=1).to_numpy()
    assert heat["customdata"][row] == pytest.approx(expected.tolist())  # the |grad| shown
    assert heat["z"][row] == pytest.approx(np.log10(expected).tolist())  # the log colour
    resp = call(
        app,
        "run-w-layer.value",
        {
            "run-meta.data": meta,
            "run-id.data": view.id,
            "run-w-heatmap.clickData": {"points": [{"x": 2, "y": "L1 n2"}]},
        },
        "run-w-heatmap.clickData",
    )
    assert resp["run-w-layer"]["value"] == 1
    assert resp["run-w-neuron"]["value"] == 2
    assert resp["run-w-param"]["value"] == names  # the neuron's weights and bias
    assert {"label": "neuron 3", "value": 3} in resp["run-w-neuron"]["options"]


def test_weights_in_the_url_restore_the_weight_picker(small_db):
    app = create_app(small_db)
    view = tracer.connect(small_db, readonly=True).run(
        tracer.connect(small_db, readonly=True).runs().iloc[0]["id"]
    )
    params = view.parameters()
    wanted = params.loc[params["layer"] == 1, "name"].tolist()[1:3]
    tree = page(app, f"/run/{view.id}", "?weights=" + ",".join([*wanted, "no.such.weight"]))
    args = find(tree, "run-below-args")["props"]["data"]
    assert args["weights"] == [*wanted, "no.such.weight"]
    meta = {"traced": True}
    below = mount_below(app, tree)
    picked = find(below, "run-w-param")["props"]["value"]
    resp = call(
        app,
        "run-w-layer.value",
        {"run-meta.data": meta, "run-id.data": view.id, "run-w-param.value": picked},
        "run-meta.data",
    )
    assert resp["run-w-param"]["value"] == wanted  # the unknown name is dropped
    first = params[params["name"] == wanted[0]].iloc[0]
    assert resp["run-w-layer"]["value"] == int(first["layer"])
    assert resp["run-w-neuron"]["value"] == int(first["neuron"])
    assert set(wanted) <= {o["value"] for o in resp["run-w-param"]["options"]}
    resp = call(
        app, "run-w-layer.value", {"run-meta.data": meta, "run-id.data": view.id}, "run-meta.data"
    )
    assert resp["run-w-param"]["value"] != wanted  # without the URL: the liveliest weight


def test_graph_is_not_resent_for_a_move_within_one_traced_step(small_db):
    app = create_app(small_db)
    view = tracer.connect(small_db, readonly=True).run(
        tracer.connect(small_db, readonly=True).runs().iloc[0]["id"]
    )
    meta = {"traced": True}
    values = {
        "run-meta.data": meta,
        "run-id.data": view.id,
        "run-slider.value": 2,
        "run-g-mode.value": "node",
        "run-g-node.value": 5,
    }
    resp = call(app, "run-cyto.elements", values, "run-slider.value")
    drawn = resp["run-g-drawn"]["data"]
    assert drawn["step"] == context_for(app).run(view.id).nearest_traced(2)
    assert resp["run-cyto"]["elements"]
    same = call(app, "run-cyto.elements", {**values, "run-g-drawn.data": drawn}, "run-slider.value")
    assert same is None  # PreventUpdate: nothing sent
    moved = call(
        app,
        "run-cyto.elements",
        {**values, "run-g-node.value": 6, "run-g-drawn.data": drawn},
        "run-g-node.value",
    )
    assert moved["run-g-drawn"]["data"]["key"] != drawn["key"]


def test_nonfinite_run_tells_its_story_on_top_and_highlights_cells(tmp_path):
    """A NaN that appears at step 2 is told at the top of the page, its button replays
    that step around the node, and it is sent to the grid as text."""
    db = str(tmp_path / "nan.db")
    model = MLP(2, [2, 1], seed=0)
    with tracer.record("nan", db) as run, pytest.warns(RuntimeWarning, match="NaN/inf"):
        run.watch(model)
        for k in range(4):
            out = model([Value(1.0), Value(-1.0)])
            loss = out * out + (Value(math.nan) if k >= 2 else 0.0)
            model.zero_grad()
            loss.backward()
            run.log(loss)
    app = create_app(db)
    view = tracer.connect(db, readonly=True).run("nan")
    bad = view.first_nonfinite()
    tree = page(app, f"/run/{view.id}")
    shown = [c["props"].get("id") for c in tree["props"]["children"]]
    first = next(c for c in tree["props"]["children"] if c["type"] != "Store")
    assert shown[0] == "run-id" and first["props"]["children"][0]["props"]["id"] == "run-header"
    top = first["props"]["children"][0]  # the header, first
    story = find(top, "run-story-text")["props"]["children"]
    assert (bad.step, bad.kind, bad.op) == (2, "forward", "")  # the NaN leaf
    assert story == bad.story and f"step 2: leaf node {bad.node} was fed nan" in story
    assert find(top, "run-diverged")["props"]["children"] == f"diverged at step {bad.step}"
    resp = call(
        app,
        "run-g-mode.value",
        {"run-story-go.n_clicks": 1, "run-id.data": view.id},
        "run-story-go.n_clicks",
    )
    assert resp["run-slider"]["value"] == bad.step
    assert resp["run-g-node"]["value"] == bad.node and resp["run-g-mode"]["value"] == "node"
    request = {"startRow": 0, "endRow": 5, "sortModel": [{"colId": "value", "sort": "desc"}]}
    values = {
        "run-nodes.getRowsRequest": request,
        "run-slider.value": 3,
        "run-meta.data": {"traced": True},
        "run-id.data": view.id,
    }
    resp = call(app, "run-nodes.getRowsResponse", values, "run-nodes.getRowsRequest")
    rows = resp["run-nodes"]["getRowsResponse"]["rowData"]
    assert rows[0]["value"] == "NaN", rows  # NaN/inf first, as text the grid highlights
    assert isinstance(rows[-1]["value"], float)
    assert resp["run-nodes"]["getRowsResponse"]["rowCount"] == len(view.nodes(3))


def test_curve_figures_one_point_per_step_and_log_axes():
    from gradtrace.dashboard import curvefigures

    metrics = pd.DataFrame(
        {"acc": [0.5, 0.75, 1.0], "loss": [1.0, math.nan, 0.25], "lr": [0.1, 0.1, 0.1]},
        index=pd.Index([0, 1, 2], name="step"),
    )
    loss = curvefigures.loss_figure(metrics, 0.5, True, 1)
    assert loss["data"][0]["x"] == [0, 1, 2] and loss["data"][0]["y"] == [1.0, None, 0.25]
    assert loss["data"][1]["y"][2] == pytest.approx((0.5 * 1.0 + 0.25) / 1.5)  # EMA over NaN
    assert loss["layout"]["yaxis"]["type"] == "log"
    assert loss["layout"]["shapes"][0]["x0"] == 1
    other = curvefigures.metrics_figure(metrics, 0.0, None, logy=True)
    assert [t["name"] for t in other["data"][::2]] == ["acc", "lr"]
    assert other["data"][2]["xaxis"] == "x2" and other["layout"]["yaxis2"]["type"] == "log"
    assert other["data"][1]["visible"] is False  # no smoothing: the EMA trace is hidden


def test_run_page_reads_each_backend(db_url):
    """The same callbacks over SQLite and PostgreSQL (opened read-only)."""
    run_id = train("toy", 3, db_url)
    app = create_app(db_url)
    tree = page(app, f"/run/{run_id}")
    below = mount_below(app, tree)
    meta = find(below, "run-meta")["props"]["data"]
    assert meta["traced"] is True and meta["n_params"] == 41
    assert find(tree, "run-loss")["props"]["figure"]["data"][0]["x"] == [0, 1, 2]
    values = {
        "run-slider.value": 2,
        "run-meta.data": meta,
        "run-id.data": run_id,
        "run-g-mode.value": "node",
        "run-g-node.value": 5,
    }
    resp = call(app, "run-cyto.elements", values, "run-slider.value")
    assert "5" in [e["data"]["id"] for e in resp["run-cyto"]["elements"]]
    with pytest.raises(Exception, match=r"(?i)read.?only"):
        context_for(app).store.delete_run(run_id)
