"""The run page without a browser: its readability rules (round slider marks, a
constant series' sane axis, a log colourbar's few labels, a histogram panel per
layer), the live header, and the Dash idioms it keeps (no JavaScript in Python,
no control that waits on a section mounted later).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gradtrace.dashboard import create_app, curvefigures, figures, stepfigures
from gradtrace.dashboard.groups import histogram
from gradtrace.dashboard.pages import run as run_page
from gradtrace.dashboard.run import ids, overview, replay
from gradtrace.tracer.display import number
from gradtrace.tracer.recording.demo import train
from helpers.dash import call

from gradtrace import tracer

DASHBOARD = Path(run_page.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("runpage") / "runs.db")
    train("toy", 9, db)
    return db


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (0, 79, [0, 20, 40, 60]),
        (0, 59, [0, 20, 40]),
        (0, 9999, [0, 2000, 4000, 6000, 8000]),
        (3, 17, [3, 10, 15]),
        (0, 5, [0, 1, 2, 3, 4, 5]),
        (7, 7, [7]),
    ],
)
def test_slider_marks_fall_on_round_steps(first, last, expected):
    marks = replay.marks(first, last)
    assert sorted(marks) == expected
    assert all(marks[k] == str(k) for k in marks)


def test_a_constant_series_gets_an_axis_around_its_value():
    metrics = pd.DataFrame(
        {"loss": [3.0, 2.0, 1.0], "lr": [1e4] * 3, "acc": [0.5, math.nan, 0.5]},
        index=pd.Index([0, 1, 2], name="step"),
    )
    fig = curvefigures.metrics_figure(metrics, 0.0, 1)
    names = curvefigures.other_metrics(metrics)
    lr = "yaxis" if names[0] == "lr" else f"yaxis{names.index('lr') + 1}"
    acc = "yaxis" if names[0] == "acc" else f"yaxis{names.index('acc') + 1}"
    assert fig["layout"][lr]["range"] == [5e3, 1.5e4]  # 10k in the middle, not 9.999k..10.001k
    assert fig["layout"][acc]["range"] == [0.25, 0.75]  # NaN aside, it is constant too
    assert fig["layout"]["meta"]["steady"][lr]["log"] == [3.0, 5.0]
    log = curvefigures.metrics_figure(metrics, 0.0, 1, logy=True)
    assert log["layout"][lr]["range"] == [3.0, 5.0] and log["layout"][lr]["type"] == "log"
    loss = curvefigures.loss_figure(metrics, 0.0, False, 1)
    assert "range" not in loss["layout"]["yaxis"]  # a moving series keeps autorange
    assert curvefigures.steady_range(np.array([0.0, 0.0])) == {
        "linear": [-1.0, 1.0],
        "log": [-1.0, 1.0],
    }


def test_log_y_switch_keeps_a_constant_axis_readable(toy_db):
    run_id = tracer.connect(toy_db, readonly=True).runs().iloc[0]["id"]
    metrics = tracer.connect(toy_db, readonly=True).run(run_id).metrics()
    metrics["lr"] = 0.1
    _, other = overview._axis_patch(metrics, log=True)
    ops = json.dumps(other.to_plotly_json())
    assert '"log"' in ops and "[-2.0, 0.0]" in ops  # 0.1: one decade either side


def test_log_colourbar_labels_stay_few_over_hundreds_of_decades():
    assert figures.decade_ticks(-3.2, 0.5) == [-3, -2, -1, 0]
    assert figures.decade_ticks(-5, 300) == [0, 50, 100, 150, 200, 250, 300]
    mags = np.array([[1e-4, 1e-2, 1e300], [np.inf, np.nan, 1e-3]])
    fig = figures.heatmap_figure(mags, [0, 1, 2], ["L0 n0", "L0 n1"])
    bar = fig["data"][0]["colorbar"]
    assert 2 <= len(bar["tickvals"]) <= 7
    assert bar["ticktext"] == [f"1e{t}" for t in bar["tickvals"]]


def test_histograms_are_one_panel_per_layer_on_its_own_axis():
    rng = np.random.default_rng(0)
    small, wide = rng.normal(0, 0.01, 8), np.r_[rng.normal(0, 5, 256), np.nan]
    fig = stepfigures.histograms_figure(
        "weights at step 3", {"layer 0": histogram(small), "layer 1": histogram(wide)}
    )
    assert [t["xaxis"] for t in fig["data"]] == ["x", "x2"]
    assert [sum(t["y"]) for t in fig["data"]] == [8, 256]  # every finite weight, per layer
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles == ["layer 0", "layer 1 (1 NaN/inf)"]
    assert "layer 1: 1 NaN/inf" in fig["layout"]["title"]["text"]
    assert max(fig["data"][0]["x"]) < 0.1 < max(fig["data"][1]["x"])  # own x ranges


def test_live_poll_rewrites_the_headline_numbers(toy_db):
    app = create_app(toy_db)
    view = tracer.connect(toy_db, readonly=True).run(
        tracer.connect(toy_db, readonly=True).runs().iloc[0]["id"]
    )
    values = {"run-live-timer.n_intervals": 1, "run-id.data": view.id, "run-live.data": None}
    resp = call(app, f"{ids.BEST}.children", values, "run-live-timer.n_intervals")
    loss = view.metrics()["loss"]
    assert resp[ids.BEST]["children"] == f"{number(loss.min(), 4)} @ {int(loss.idxmin())}"
    assert resp[ids.LOSS_TEXT]["children"] == (
        f"{number(loss.iloc[0], 4)} → {number(loss.iloc[-1], 4)}"
    )


def test_no_javascript_in_python_strings():
    """Every clientside callback names a function of assets/run.js."""
    script = (DASHBOARD / "assets" / "run.js").read_text()
    for path in DASHBOARD.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == (
                "clientside_callback"
            ):
                first = node.args[0]
                assert isinstance(first, ast.Call), f"{path.name}:{node.lineno}"
                assert first.func.id == "ClientsideFunction", f"{path.name}:{node.lineno}"
                namespace, name = (a.value for a in first.args)
                assert namespace == "run" and f"{name}: function" in script, name


def test_controls_of_the_first_paint_read_only_what_the_first_paint_has(toy_db):
    """A callback fired by a control of the first paint (log y, smoothing, zoom, the
    live poll) must not read a component mounted later: Dash raises a ReferenceError
    in the browser for an input or state missing from the page."""
    app = create_app(toy_db)
    run_id = tracer.connect(toy_db, readonly=True).runs().iloc[0]["id"]
    client = app.server.test_client()
    client.get("/")
    first = client.get("/_dash-layout", headers={"Referer": f"http://localhost/run/{run_id}"})
    present = set(_ids(first.json))
    assert {ids.LOGY, ids.LOSS, ids.STEP, ids.LIVE, ids.RUN_ID} <= present
    for key, spec in app.callback_map.items():
        outputs = [o.split(".")[0] for o in key.strip(".").split("...")]
        inputs = [d["id"] for d in spec["inputs"]]
        reads = inputs + [d["id"] for d in spec["state"]]
        # fired once one of its inputs changes and one of its outputs is there
        if any(i in present for i in inputs) and any(o in present for o in outputs):
            missing = [r for r in reads if r not in present]
            assert not missing, (key, missing)


def _ids(tree) -> list[str]:
    out = []
    if isinstance(tree, dict):
        if isinstance(tree.get("props"), dict) and isinstance(tree["props"].get("id"), str):
            out.append(tree["props"]["id"])
        for value in tree.values():
            out += _ids(value)
    elif isinstance(tree, list):
        for value in tree:
            out += _ids(value)
    return out


def test_the_graph_views_script_is_left_out_of_the_page(toy_db):
    """cytoscape (the largest script after plotly.js) is loaded after the first paint,
    by the run page, from the page's ``gt-deferred`` list."""
    import re

    html = create_app(toy_db).server.test_client().get("/").data.decode()
    tags = re.findall(r'<script src="([^"]+)"', html)
    assert tags and not [t for t in tags if "dash_cytoscape" in t]
    block = re.search(r'<script id="gt-deferred" type="application/json">([^<]*)</script>', html)
    later = json.loads(block.group(1))
    assert len(later) == 1 and "/_dash-component-suites/dash_cytoscape/" in later[0]
    assert [t for t in tags if "dash_ag_grid" in t]  # the runs list draws its grid at once
