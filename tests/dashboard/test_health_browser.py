"""Health that names things, and the divergence story, in headless Chromium at a
desktop and a phone size: the dead neurons named with the step they died and a
click to their weights; the story's button lands on its node, selected, its
detail shown, in a readable neighbourhood.

    flock /tmp/gradtrace-browser.lock python -m pytest --headless \
        tests/dashboard/test_health_browser.py -q
"""

from __future__ import annotations

import os

import pytest
from gradtrace.dashboard import create_app
from gradtrace.dashboard.graphs import READABLE
from helpers.browser import component_prop, figure_data, figure_layout, wait_until
from helpers.dash import diverging_run
from helpers.health import DEAD, dying_run
from selenium.webdriver.common.by import By

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
SHOTS = os.environ.get("GRADTRACE_SHOTS")  # a folder: screenshots to look at


@pytest.fixture(scope="module")
def dying(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("dying") / "dying.db")
    return db, dying_run(db)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("div") / "div.db")
    return db, diverging_run(db)


def open_page(dash_duo, db: str, path: str, size: str) -> None:
    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(*SIZES[size])
    dash_duo.driver.get(f"{dash_duo.server_url}{path}")
    dash_duo.wait_for_element("#run-name", timeout=20)


def shot(dash_duo, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        dash_duo.driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def in_view(dash_duo, selector: str) -> bool:
    """Some of the element is inside the window (it was scrolled to)."""
    return dash_duo.driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) { return false; }"
        "const r = e.getBoundingClientRect();"
        "return r.height > 0 && r.top < window.innerHeight && r.bottom > 0;",
        selector,
    )


CY = (  # the cytoscape instance (cytoscape.js keeps it on its container as _cyreg)
    "const c = [...document.querySelectorAll('#run-cyto, #run-cyto *')]"
    ".find(e => e._cyreg && e._cyreg.cy);"
    "const cy = c && c._cyreg.cy; if (!cy) { return null; }"
)


@pytest.mark.parametrize("size", SIZES)
def test_dead_neurons_named_with_their_step_and_a_click_to_their_weights(dash_duo, dying, size):
    db, run_id = dying
    run = tracer.connect(db, readonly=True).run(run_id)
    open_page(dash_duo, db, f"/run/{run_id}", size)
    listed = wait_until(
        lambda: dash_duo.find_element("#run-h-neurons-title").text, what="the neuron list"
    )
    assert listed.startswith(f"{len(DEAD)} dead at step")
    rows = [r.text for r in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".neuron-table tr")]
    assert len(rows) == len(DEAD)
    for (layer, neuron), at in DEAD.items():
        row = next(r for r in rows if f"layer {layer} · neuron {neuron}" in r)
        assert "dead" in row and f"since step {at}" in row
    badge = dash_duo.find_element("#run-sum-badge")
    assert badge.text.startswith(f"{len(DEAD)} dead · 0 saturated")
    assert "health-bad" in badge.get_attribute("class")
    assert badge.value_of_css_property("background-color") == "rgba(220, 38, 38, 1)"  # red
    dash_duo.driver.execute_script(
        "document.getElementById('run-h-neurons').scrollIntoView({block: 'center'})"
    )
    shot(dash_duo, f"health-{size}")

    layer, neuron = 0, 4
    button = dash_duo.driver.find_element(
        By.XPATH,
        f"//tr[td[text()='layer {layer} · neuron {neuron}']]//button",
    )
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    params = run.parameters()
    mine = params[(params["layer"] == layer) & (params["neuron"] == neuron)]["name"].tolist()
    wait_until(
        lambda: component_prop(dash_duo, "run-w-param", "value") == mine,
        what="the neuron's weights picked",
    )
    wait_until(lambda: in_view(dash_duo, "#run-w-history"), what="the weights in view")
    traces = wait_until(
        lambda: (
            {t.get("legendgroup") or t.get("name") for t in figure_data(dash_duo, "run-w-history")}
            or None
        ),
        what="the weights plotted",
    )
    assert traces
    shot(dash_duo, f"health-weights-{size}")
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("size", SIZES)
def test_divergence_button_lands_on_the_node_selected_with_its_detail(dash_duo, diverged, size):
    db, run_id = diverged
    run = tracer.connect(db, readonly=True).run(run_id)
    bad, went = run.first_nonfinite(), run.onset(until=run.first_nonfinite().step)
    open_page(dash_duo, db, f"/run/{run_id}", size)
    onset = dash_duo.find_element("#run-story-onset").text
    assert onset == went.story and f"step {went.step}" in onset
    layout = wait_until(lambda: figure_layout(dash_duo, "run-loss"), what="the loss drawn")
    assert layout["yaxis"]["type"] == "log"  # the loss spans hundreds of decades
    mark = next(t for t in figure_data(dash_duo, "run-loss") if t.get("name") == "onset")
    assert mark["x"] == [went.step, went.step]
    # clicked at once: the graph below the fold is not mounted yet; the button waits
    dash_duo.find_element("#run-story-go").click()
    wait_until(
        lambda: (
            component_prop(dash_duo, "run-g-node", "value") == bad.node
            and component_prop(dash_duo, "run-g-mode", "value") == "node"
            and component_prop(dash_duo, "run-slider", "value") == bad.step
        ),
        what="the graph around the node at the divergence step",
    )
    drawn = wait_until(
        lambda: (
            dash_duo.driver.execute_script(
                CY + "return {n: cy.nodes().length, sel: cy.$('node:selected').map(e => e.id())};"
            )
            if str(bad.node) in (dash_duo.find_element("#run-g-detail").text or "")
            else None
        ),
        what="the node selected and its detail shown",
    )
    assert drawn["sel"] == [str(bad.node)]
    assert 3 <= drawn["n"] <= READABLE
    if size == "phone":  # top to bottom: left to right the boxes would be specks
        rank = dash_duo.driver.execute_script(CY + "return cy.options().layout || null;")
        assert component_prop(dash_duo, "run-cyto", "layout")["rankDir"] == "TB", rank
    detail = dash_duo.find_element("#run-g-detail").text
    assert "Click a node" not in detail and f"node\n{bad.node}" in detail
    wait_until(lambda: in_view(dash_duo, "#run-cyto"), what="the graph scrolled into view")
    note = dash_duo.find_element("#run-g-note").text
    assert f"step {bad.step}: node {bad.node}" in note
    shot(dash_duo, f"divergence-node-{size}")
    assert dash_duo.get_logs() == []
