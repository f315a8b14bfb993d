"""What keeps the run page fast, without a browser: the page in Dash's own layout
response on a run page's first load, the decision boundary sent as a patch of
its scores when the browser has the same grid drawn, and a plotly.js bundle that
holds every chart type the dashboard draws.

    python -m pytest tests/test_run_page_speed.py -q
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest
from gradtrace.dashboard import app as dashboard_app
from gradtrace.dashboard import create_app, figures, graphs
from gradtrace.dashboard.context import context_for
from gradtrace.dashboard.run import replay
from gradtrace.tracer.recording.demo import train
from helpers.dash import call, find, scalar_score
from plotly.offline import get_plotlyjs_version

from gradtrace import tracer

STEPS = 4


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("speed") / "runs.db")
    return db, train("moons", STEPS, db)


def layout(app, referrer: str | None) -> dict:
    client = app.server.test_client()
    client.get("/")  # the first request registers the pages router
    headers = {"Referer": referrer} if referrer else {}
    return client.get("/_dash-layout", headers=headers).json


def test_a_run_pages_layout_request_carries_the_page(moons):
    db, run_id = moons
    app = create_app(db)
    view = tracer.connect(db, readonly=True).run(run_id)
    tree = layout(app, f"http://localhost/run/{run_id}?step=2&node=7")
    location = find(tree, "_pages_location")["props"]
    # the location starts where the browser is, so Dash's router has nothing to do
    assert (location["pathname"], location["search"]) == (f"/run/{run_id}", "?step=2&node=7")
    loss = find(tree, "run-loss")["props"]["figure"]
    assert loss["data"][0]["y"] == pytest.approx(view.metrics()["loss"].tolist())
    assert loss["layout"]["shapes"][0]["x0"] == 2  # the URL's step
    assert find(tree, "run-below-args")["props"]["data"]["node"] == 7
    # the other metrics come as data, drawn once the loss is (a skeleton until then)
    assert find(tree, "run-metrics")["props"]["figure"]["layout"]["meta"] == "skeleton"
    other = find(tree, "run-metrics-first")["props"]["data"]
    assert other["data"][0]["y"] == pytest.approx(view.metrics()["acc"].tolist())
    assert find(tree, "_pages_store")["props"]["data"] == {"title": f"gradtrace · run {run_id[:8]}"}


@pytest.mark.parametrize(
    "referrer",
    [None, "http://localhost/", "http://localhost/compare?runs=a,b", "http://elsewhere/run/x"],
)
def test_other_layout_requests_leave_the_page_to_the_router(moons, referrer):
    db, _ = moons
    tree = layout(create_app(db), referrer)
    assert "pathname" not in find(tree, "_pages_location")["props"]
    assert find(tree, "_pages_content")["props"].get("children") is None


def test_unknown_run_in_the_layout_request_is_the_not_found_page(moons):
    db, _ = moons
    tree = layout(create_app(db), "http://localhost/run/no-such-run")
    assert "no-such-run" in find(tree, "run-missing")["props"]["children"]


def test_boundary_of_another_step_is_a_patch_of_the_scores(moons):
    db, run_id = moons
    app = create_app(db)
    view = tracer.connect(db, readonly=True).run(run_id)
    meta = {"spec": view.model_spec, "traced": True}
    values = {"run-id.data": run_id, "run-meta.data": meta, "run-slider.value": STEPS - 1}
    first = call(app, "run-boundary-grid.data", values, "run-slider.value", side=True)
    figure, key = first["run-boundary"]["figure"], first["run-boundary-grid"]["data"]
    assert figure["data"][0]["type"] == "heatmap" and key

    values.update({"run-slider.value": 1, "run-boundary-grid.data": key})
    moved = call(app, "run-boundary-grid.data", values, "run-slider.value", side=True)
    assert "run-boundary-grid" not in moved  # the same grid stays drawn
    patch = moved["run-boundary"]["figure"]
    assert patch["__dash_patch_update"] == "__dash_patch_update"
    changed = {tuple(op["location"]) for op in patch["operations"]}
    assert changed == {("data", 0, "z"), ("data", 1, "z"), ("layout", "title", "text")}
    ops = {tuple(op["location"]): op["params"]["value"] for op in patch["operations"]}
    assert ops[("layout", "title", "text")] == "decision boundary at step 1"
    z = np.array(ops[("data", 0, "z")], dtype=float)
    assert ops[("data", 1, "z")] == ops[("data", 0, "z")]
    # the scores are step 1's model, by the engine's scalar forward pass
    params = view.param_arrays(steps=[1], which="data").iloc[0].to_numpy()
    xs, ys = figure["data"][0]["x"], figure["data"][0]["y"]
    for i, j in ((0, 0), (5, 17), (len(xs) - 1, len(ys) - 1)):
        expected = np.clip(scalar_score(view.model_spec, params, xs[i], ys[j]), -3, 3)
        assert z[j][i] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert not np.allclose(z, np.array(figure["data"][0]["z"], dtype=float))

    # a browser holding another grid (or none) gets the whole figure
    values["run-boundary-grid.data"] = "another grid"
    whole = call(app, "run-boundary-grid.data", values, "run-slider.value", side=True)
    assert whole["run-boundary"]["figure"]["data"][2]["type"] == "scatter"
    assert whole["run-boundary-grid"]["data"] == key


def test_boundary_grid_key_names_grid_and_points(moons):
    db, run_id = moons
    rc = context_for(create_app(db)).run(run_id)
    meta = {"spec": rc.view.model_spec}
    keys = {replay.boundary(rc, meta, s)[0] for s in range(STEPS)}
    assert len(keys) == 1  # the moons inputs are the same at every step
    assert replay.boundary(rc, {"spec": None}, 0)[0] is None


def _trace_types(text: str) -> set[str]:
    """The trace types a plotly.js bundle registers."""
    return set(re.findall(r'moduleType:"trace",name:"(\w+)"', text))


def _written_trace_types(every: set[str]) -> set[str]:
    """Every ``"type": "..."`` the dashboard's code writes that is a trace type in ``every``."""
    written = set()
    for source in Path(dashboard_app.__file__).parent.rglob("*.py"):
        written |= set(re.findall(r'"type":\s*"(\w+)"', source.read_text(encoding="utf-8")))
    return written & every


def _figures(tree):
    """Every figure (a dict with ``data`` and a ``layout`` dict) in a Dash layout tree."""
    if isinstance(tree, dict):
        if isinstance(tree.get("layout"), dict) and "data" in tree:
            yield tree
        for value in tree.values():
            yield from _figures(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _figures(value)


def test_figure_templates_hold_only_what_the_cartesian_charts_use(moons):
    """plotly.py's default template (merged under ours) carries polar, ternary, 3-D and
    map settings and defaults for ~24 trace types: ~7 KB per figure that plotly.js
    re-applies at every redraw. Each figure's template keeps the cartesian layout
    keys and the defaults of the trace types the dashboard writes, with the values
    the merged template had (the look stays)."""
    db, run_id = moons
    tree = layout(create_app(db), f"http://localhost/run/{run_id}?step=2")
    built = [f for f in _figures(tree) if "template" in f["layout"]]
    assert len(built) >= 2  # the loss curve and the other metrics, at least
    mags = np.array([[1.0, 0.0], [2.0, 3.0]])
    built += [
        figures.frame(),
        figures.subplots(3, 1, ["a", "b", "c"], shared_x=True),
        figures.empty("nothing"),
        figures.heatmap_figure(mags, [0, 1], ["n0", "n1"]),
    ]
    full = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    written = _written_trace_types(_trace_types(full.read_text(encoding="utf-8")))
    assert written == set(figures.TRACE_TYPES)
    merged = go.Figure().update_layout(template=figures.TEMPLATE).to_plotly_json()
    merged = merged["layout"]["template"]
    cartesian = {
        "autotypenumbers", "font", "colorway", "hovermode", "hoverlabel", "paper_bgcolor",
        "plot_bgcolor", "xaxis", "yaxis", "shapedefaults", "annotationdefaults", "title",
    }  # fmt: skip
    for fig in built:
        template = fig["layout"]["template"]
        assert set(template) == {"layout", "data"}
        assert set(template["layout"]) == cartesian
        assert {k: merged["layout"][k] for k in cartesian} == template["layout"]
        # bars keep their thin outline, colour bars none; nothing for other trace types
        assert template["data"] == {
            "bar": [{"type": "bar", "marker": {"line": {"color": "#E5ECF6", "width": 0.5}}}],
            "heatmap": [{"type": "heatmap", "colorbar": {"outlinewidth": 0, "ticks": ""}}],
            "contour": [{"type": "contour", "colorbar": {"outlinewidth": 0, "ticks": ""}}],
        }
        for kind, defaults in template["data"].items():  # the merged template's values
            key = "marker" if kind == "bar" else "colorbar"
            before = merged["data"][kind][0][key]
            assert all(before[k] == v for k, v in defaults[0][key].items())
        assert len(json.dumps(template)) * 5 < len(json.dumps(merged))
        # a heatmap names its own colour scale: the template has none to lend it
        for trace in fig["data"]:
            if trace.get("type") == "heatmap":
                assert trace["colorscale"]


def test_every_chart_type_the_dashboard_draws_is_in_its_plotly_bundle():
    """The page loads plotly.js's cartesian bundle, not Dash's full one: a trace type
    it lacks (scattergl, say) would draw nothing. Every ``"type": "..."`` the
    dashboard's code writes that is a plotly.js trace type must be in the bundle,
    and the bundle is the version plotly.py (hence Dash) ships."""
    bundle = Path(dashboard_app.__file__).parent / "assets" / dashboard_app.PLOTLY_BUNDLE
    text = bundle.read_text(encoding="utf-8")
    full = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    every = _trace_types(full.read_text(encoding="utf-8"))
    assert {"scatter", "bar", "heatmap", "contour"} <= _trace_types(text) < every
    traces = _written_trace_types(every)
    assert traces >= {"scatter", "bar", "heatmap", "contour"}  # the scan finds them
    assert traces <= _trace_types(text), traces - _trace_types(text)
    shipped = get_plotlyjs_version().split(".")[:2]
    assert re.search(r"plotly\.js \(cartesian - minified\) v(\d+)\.(\d+)\.", text).groups() == (
        tuple(shipped)
    )
    # a long line is thinned, not drawn with WebGL
    y = [float(k % 7) for k in range(10_000)]
    trace = figures.scatter(len(y), x=list(range(len(y))), y=y, mode="lines")
    assert trace["type"] == "scatter" and len(trace["x"]) <= 2 * figures.BIG + 2
    assert max(trace["y"]) == 6.0 and min(trace["y"]) == 0.0


def test_steps_of_one_graph_shape_share_what_the_structure_determines(moons, monkeypatch):
    """A typed step to another traced step reads that step's values, not its structure
    again: the children index and each neuron's chains are kept per graph shape."""
    db, run_id = moons
    rc = context_for(create_app(db)).run(run_id)
    first, second = (int(s) for s in rc.traced()[:2])
    assert rc.shape(first) == rc.shape(second)
    assert rc.children(first) is rc.children(second)
    found = []
    real = graphs._chains
    monkeypatch.setattr(graphs, "_chains", lambda *a: found.append(a[3:5]) or real(*a))
    params = rc.parameters()
    at_first = replay.inputs_at(rc, first)
    at_second = replay.inputs_at(rc, second)
    last = int(params["layer"].max())
    assert found == [(0, 0), (last, 0)]  # layer 0 (inputs) and the last (labels), once
    # the same as reading the second step afresh, its own values included
    nodes = rc.nodes(second)
    fresh = graphs.children_index(nodes)
    np.testing.assert_array_equal(at_second[0], graphs.training_inputs(nodes, fresh, params))
    np.testing.assert_array_equal(at_second[1], graphs.hinge_labels(nodes, fresh, params))
    np.testing.assert_array_equal(at_first[0], at_second[0])  # moons: the same 100 points
