"""The dashboard in a real headless Chromium (dash_duo): runs list, run page,
weight history against the database, replay, live growth, hostile run names.

    python -m pytest tests/test_dashboard_browser.py --headless -q
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from gradtrace.dashboard import create_app
from gradtrace.tracer.display import duration
from gradtrace.tracer.recording.demo import train
from helpers.browser import (
    component_prop,
    figure_data,
    figure_layout,
    open_run,
    pick,
    set_slider,
    tick_row,
    wait_until,
)
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

XSS = "<script>alert(1)</script>"
MOONS_STEPS = 6
TOY_STEPS = 20
LIVE_STEPS = 60


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from gradtrace import tracer
    from gradtrace.tracer.recording.demo import setup
    model, loss_fn, opt, _ = setup("toy", 10, 1)
    run = tracer.record("crashed", sys.argv[1], background=False)  # committed at log()
    run.watch(model, optimizer=opt)
    for k in range(3):
        loss, acc = loss_fn(); model.zero_grad(); loss.backward()
        run.log(loss, acc=acc); opt.step()
    os._exit(1)  # killed: the run is never closed
    """
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, Any]:
    """A database with a moons run, a toy run, a params-only run, a hostile name and a
    run whose process died while recording."""
    db = str(tmp_path_factory.mktemp("dash") / "runs.db")
    ids = {
        "moons": train("moons", MOONS_STEPS, db),
        "toy": train("toy", TOY_STEPS, db, seed=3),
        "xss": train("toy", 3, db, name=XSS),
        "params": train("toy", 4, db, name="params-only", capture="params"),
    }
    subprocess.run([sys.executable, "-c", CRASH_SCRIPT, db], check=False, timeout=60)
    return {"db": db, "ids": ids}


def no_alert(dash_duo) -> bool:
    """True when no JavaScript alert is open."""
    try:
        alert = dash_duo.driver.switch_to.alert
    except NoAlertPresentException:
        return True
    alert.dismiss()
    return False


def test_runs_page_lists_runs_and_links_to_them(dash_duo, recorded):
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.wait_for_contains_text("#runs-grid", "moons", timeout=20)
    text = dash_duo.find_element("#runs-grid").text
    for expected in ("toy", "params-only", "finished", XSS, "crashed"):
        assert expected in text
    assert dash_duo.find_element("#runs-count").text == "5 runs"
    crashed = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#runs-grid .status-crashed")
    assert [c.text for c in crashed] == ["crashed"]  # coloured by cellClassRules
    # Durations read as on the command line: display.duration's text, sent with the rows.
    with tracer.connect(recorded["db"], readonly=True) as store:
        want = sorted(duration(s) for s in store.runs()["duration_s"].tolist())
    cells = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#runs-grid .ag-cell[col-id=duration_s]")
    assert sorted(c.text for c in cells) == want

    # Tick two runs: their loss curves are overlaid and their config diff listed.
    for row in (0, 1):  # the grid may redraw its rows while it settles: find them afresh
        wait_until(lambda row=row: tick_row(dash_duo, row), what=f"row {row} ticked")
    loss = wait_until(
        lambda: (d := figure_data(dash_duo, "runs-compare-loss")) and len(d) == 2 and d,
        what="two compared loss curves",
    )
    assert {len(t["x"]) for t in loss} <= {MOONS_STEPS, TOY_STEPS, 3, 4}
    dash_duo.wait_for_contains_text("#runs-compare", "config differences")

    link = next(
        a
        for a in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#runs-grid a.run-link")
        if a.text == "moons"
    )
    link.click()
    dash_duo.wait_for_text_to_equal("#run-name", "moons", timeout=20)
    # the address bar then carries the view (?step=...&weights=...): compare the path
    assert urlsplit(dash_duo.driver.current_url).path == f"/run/{recorded['ids']['moons']}"
    assert dash_duo.get_logs() == []


def test_loss_curve_has_one_point_per_step(dash_duo, recorded):
    run_id = recorded["ids"]["moons"]
    open_run(dash_duo, recorded["db"], run_id)
    data = wait_until(lambda: figure_data(dash_duo, "run-loss"), what="the loss curve")
    expected = tracer.connect(recorded["db"], readonly=True).run(run_id).metrics()["loss"]
    assert data[0]["x"] == list(range(MOONS_STEPS))
    np.testing.assert_allclose(data[0]["y"], expected.to_numpy(), rtol=1e-12)
    assert dash_duo.find_element("#run-status").text == "finished"
    assert "337" in dash_duo.find_element("#run-header").text  # parameter count


def test_picked_weight_history_equals_the_database(dash_duo, recorded):
    run_id = recorded["ids"]["moons"]
    run = tracer.connect(recorded["db"], readonly=True).run(run_id)
    grads = run.gradients(steps=[MOONS_STEPS - 1]).iloc[0].abs()
    liveliest = grads.idxmax()  # shown first: the largest |grad| at the last step
    open_run(dash_duo, recorded["db"], run_id)
    wait_until(
        lambda: figure_data(dash_duo, "run-w-history")[0]["name"] == liveliest,
        what="the liveliest weight's history",
    )
    layer = 1 if liveliest.startswith("layers.0.") else 0
    pick(dash_duo, "run-w-layer", f"layer {layer}")  # -> its neuron 0
    pick(dash_duo, "run-w-neuron", "neuron 3")
    name = f"layers.{layer}.neurons.3.w.0"
    data = wait_until(
        lambda: (d := figure_data(dash_duo, "run-w-history")) and d[0]["name"] == name and d,
        what=f"history of {name}",
    )
    updates = run.updates(params=[name])
    value, grad, delta = data[0], data[1], data[2]
    assert grad["x"] == updates["step"].tolist()
    np.testing.assert_array_equal(grad["y"], updates["grad"].to_numpy())
    np.testing.assert_array_equal(value["y"], updates["value_before"].to_numpy())
    np.testing.assert_allclose(delta["y"], (updates["value_after"] - updates["value_before"]))

    # Add the neuron's bias by name: its gradient is drawn too.
    pick(dash_duo, "run-w-param", f"layers.{layer}.neurons.3.b")
    data = wait_until(
        lambda: (d := figure_data(dash_duo, "run-w-history")) and len(d) == 6 and d,
        what="two weights' histories",
    )
    bias = run.updates(params=[f"layers.{layer}.neurons.3.b"])
    assert data[4]["name"] == f"layers.{layer}.neurons.3.b"
    np.testing.assert_array_equal(data[4]["y"], bias["grad"].to_numpy())


def test_replay_slider_moves_graph_and_boundary(dash_duo, recorded):
    open_run(dash_duo, recorded["db"], recorded["ids"]["moons"])
    last = MOONS_STEPS - 1
    wait_until(
        lambda: (
            (figure_layout(dash_duo, "run-boundary") or {}).get("title", {}).get("text")
            == f"decision boundary at step {last}"
        ),
        what="the boundary at the last step",
    )
    elements = wait_until(
        lambda: component_prop(dash_duo, "run-cyto", "elements"), what="graph elements"
    )
    boundary = figure_data(dash_duo, "run-boundary")
    assert len([e for e in elements if "source" not in e["data"]]) == 10  # a layer-0 neuron
    assert len(boundary[2]["x"]) == 100  # the moons inputs, read off the graph
    n = len(tracer.connect(recorded["db"], readonly=True).run(recorded["ids"]["moons"]).nodes(0))
    dash_duo.wait_for_text_to_equal("#run-nodes-title", f"every node of step {last} ({n} shown)")
    box = dash_duo.find_element("#run-nodes-box")
    assert box.get_attribute("open") is None  # folded until asked for
    dash_duo.find_element("#run-nodes-box summary").click()
    first_row = dash_duo.find_element("#run-nodes .ag-row[row-index='0']").text

    set_slider(dash_duo, "run-slider", 0)
    # The node table is paged on the server: a new step makes it ask again.
    dash_duo.wait_for_text_to_equal("#run-nodes-title", f"every node of step 0 ({n} shown)")
    wait_until(
        lambda: dash_duo.find_element("#run-nodes .ag-row[row-index='0']").text != first_row,
        what="the node table's rows of step 0",
    )
    wait_until(
        lambda: (
            figure_layout(dash_duo, "run-boundary")["title"]["text"]
            == "decision boundary at step 0"
        ),
        what="the boundary at step 0",
    )
    moved = wait_until(
        lambda: (e := component_prop(dash_duo, "run-cyto", "elements")) != elements and e,
        what="new graph elements",
    )
    labels = {e["data"]["id"]: e["data"]["label"] for e in elements if "label" in e["data"]}
    moved_labels = {e["data"]["id"]: e["data"]["label"] for e in moved if "label" in e["data"]}
    assert labels.keys() == moved_labels.keys() and labels != moved_labels
    assert figure_data(dash_duo, "run-boundary")[0]["z"] != boundary[0]["z"]
    shapes = figure_layout(dash_duo, "run-loss")["shapes"]
    assert shapes[0]["x0"] == 0  # the marker on the loss curve follows

    # Play runs the replay to the last step, then stops by itself.
    dash_duo.find_element("#run-play").click()
    dash_duo.wait_for_text_to_equal("#run-play", "⏸ pause", timeout=5)
    wait_until(
        lambda: component_prop(dash_duo, "run-slider", "value") == last,
        timeout=15,
        what="the replay to reach the last step",
    )
    dash_duo.wait_for_text_to_equal("#run-play", "▶ play", timeout=5)
    wait_until(
        lambda: (
            figure_layout(dash_duo, "run-boundary")["title"]["text"]
            == f"decision boundary at step {last}"
        ),
        what="the boundary to follow the replay",
    )


LIVE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from gradtrace.engine import MLP, SGD, Value, mse, toy
    from gradtrace import tracer
    X, y = toy()
    model = MLP(3, [4, 4, 1], activation="tanh", seed=1)
    opt = SGD(model.parameters(), lr=0.05)
    with tracer.record("live", sys.argv[1], config={"lr": 0.05}) as run:
        run.watch(model, optimizer=opt)
        for k in range(int(sys.argv[2])):
            loss = mse([model([Value(v) for v in row]) for row in X], y)
            model.zero_grad(); loss.backward()
            run.log(loss)
            opt.step()
            time.sleep(0.25)
    """
)


def test_live_run_grows_on_screen(dash_duo, tmp_path):
    db = str(tmp_path / "live.db")
    proc = subprocess.Popen([sys.executable, "-c", LIVE_SCRIPT, db, str(LIVE_STEPS)])
    try:
        store = wait_until(lambda: tracer.connect(db, readonly=True), what="the live database")
        run_id = wait_until(
            lambda: len(r := store.runs()) and r.iloc[0]["steps"] >= 3 and r.iloc[0]["id"],
            what="the first steps",
        )
        dash_duo.start_server(create_app(db))
        dash_duo.wait_for_contains_text("#runs-grid", "running", timeout=20)  # the runs list
        dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
        dash_duo.wait_for_text_to_equal("#run-status", "running", timeout=10)
        first = len(wait_until(lambda: figure_data(dash_duo, "run-loss"), what="curve")[0]["x"])
        grown = wait_until(
            lambda: len(figure_data(dash_duo, "run-loss")[0]["x"]) >= first + 4,
            timeout=10,
            what="the curve to grow",
        )
        assert grown
        assert proc.wait(timeout=30) == 0
        dash_duo.wait_for_text_to_equal("#run-status", "finished", timeout=10)
        xs = wait_until(
            lambda: (x := figure_data(dash_duo, "run-loss")[0]["x"]) and len(x) == LIVE_STEPS and x,
            what="every step on screen",
        )
        assert xs == list(range(LIVE_STEPS))  # no step drawn twice, none missing
        assert component_prop(dash_duo, "run-live-timer", "disabled") is True
    finally:
        proc.kill()
        proc.wait()


def test_hostile_run_name_is_shown_as_text(dash_duo, recorded):
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.wait_for_contains_text("#runs-grid", XSS, timeout=20)
    assert no_alert(dash_duo)
    cell = [
        a
        for a in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#runs-grid a.run-link")
        if a.text == XSS
    ]
    assert cell, "the name is rendered as the literal characters"
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{recorded['ids']['xss']}")
    dash_duo.wait_for_text_to_equal("#run-name", XSS, timeout=20)
    time.sleep(0.5)
    assert no_alert(dash_duo)
    injected = dash_duo.driver.execute_script(
        "return Array.from(document.scripts).filter(s => s.text.includes('alert(1)')).length"
    )
    assert injected == 0


def test_params_only_run_says_it_has_no_graph(dash_duo, recorded):
    open_run(dash_duo, recorded["db"], recorded["ids"]["params"])
    dash_duo.wait_for_contains_text("#run-g-none", "No node traces", timeout=20)
    # one line instead of an empty canvas, an empty table and an empty boundary panel
    assert not dash_duo.driver.find_elements("css selector", "#run-cyto, #run-nodes")
    wait_until(lambda: figure_data(dash_duo, "run-loss"), what="the loss curve")
    assert dash_duo.get_logs() == []
