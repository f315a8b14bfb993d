"""The run page's controls in headless Chromium, at a desktop and a phone size: a
control works from the moment it is visible (an early "log y" is applied, with no
console error), nothing scrolls sideways on a phone, a stalled weight's row shows
that weight, and every chart indexed by step marks the replayed step.

    python -m pytest tests/dashboard/test_run_page_interactions_browser.py --headless -q
"""

from __future__ import annotations

import time

import pytest
from gradtrace.dashboard import create_app
from gradtrace.dashboard.pages import run as run_page
from gradtrace.dashboard.run import ids
from gradtrace.tracer.recording.demo import train
from helpers.browser import component_prop, figure_data, figure_layout, set_slider, wait_until
from selenium.webdriver.common.by import By

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

STEPS = 40
# Clicks "log y" from the page's own clock: 150 ms after navigation, or as soon as
# the box is there; notes when, and whether the sections below were mounted.
EARLY = """
window.gtEarly = null;
(function poll() {
  const box = document.querySelector('#run-logy input');
  if (box && performance.now() >= 150) {
    window.gtEarly = {t: performance.now(), mounted: !!document.querySelector('#run-slider')};
    box.click();
  } else {
    setTimeout(poll, 5);
  }
})();
"""
TOP = "return document.getElementById(arguments[0]).getBoundingClientRect().top"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("interact") / "runs.db")
    return db, train("moons", STEPS, db)


def no_sideways_scroll(dash_duo) -> bool:
    return dash_duo.driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )


def wider_than_the_screen(dash_duo) -> list[str]:
    """Elements reaching past the right edge (what a sideways scroll would be for)."""
    return dash_duo.driver.execute_script(
        """
        const w = window.innerWidth, out = [];
        for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            const inside = el.closest('.ag-root-wrapper');  // a grid scrolls inside its card
            if (r.width && r.right > w + 1 && !inside) {
                out.push((el.id || el.className || el.tagName).toString().slice(0, 60));
            }
        }
        return out.slice(0, 10);
        """
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_log_y_clicked_before_the_page_is_whole_is_applied_without_errors(
    dash_duo, moons, monkeypatch, size
):
    db, run_id = moons
    mount = run_page.below

    def slow_mount(*args):  # the sections below arrive late: the click lands before
        time.sleep(1.5)
        return mount(*args)

    monkeypatch.setattr(run_page, "below", slow_mount)
    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(*SIZES[size])
    # the click comes from the page itself: chromedriver's get() returns only after
    # the load event, seconds late on a busy machine
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": EARLY})
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    early = wait_until(
        lambda: dash_duo.driver.execute_script("return window.gtEarly"), what="the early click"
    )
    assert early["mounted"] is False and early["t"] < 5000  # before the sections below
    wait_until(
        lambda: (figure_layout(dash_duo, ids.LOSS) or {}).get("yaxis", {}).get("type") == "log",
        what="the loss on a log axis",
    )
    dash_duo.wait_for_element("#run-slider", timeout=20)  # the page is whole
    wait_until(lambda: figure_data(dash_duo, ids.W_HEATMAP), what="the heatmap")
    box = dash_duo.find_element("#run-logy input")
    assert box.is_selected() and component_prop(dash_duo, ids.LOGY, "value") == ["log"]
    layout = figure_layout(dash_duo, ids.METRICS)
    axes = [v for k, v in layout.items() if k.startswith("yaxis") and "overlaying" not in v]
    assert {axis["type"] for axis in axes} == {"log"}
    assert figure_layout(dash_duo, ids.LOSS)["yaxis"]["type"] == "log"
    assert dash_duo.get_logs() == []
    assert no_sideways_scroll(dash_duo), wider_than_the_screen(dash_duo)
    box.click()  # and back
    wait_until(
        lambda: figure_layout(dash_duo, ids.LOSS)["yaxis"]["type"] == "linear",
        what="the loss back on a linear axis",
    )
    assert dash_duo.get_logs() == []


def test_a_stalled_row_shows_that_weight(dash_duo, moons):
    db, run_id = moons
    params = tracer.connect(db, readonly=True).run(run_id).parameters()
    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    row = dash_duo.wait_for_element(f"#{ids.STALLED} .ag-row[row-index='0']", timeout=20)
    name = row.find_element(By.CSS_SELECTOR, "[col-id='name']").text
    assert name in set(params["name"])
    row.find_element(By.CSS_SELECTOR, "[col-id='name']").click()
    wait_until(
        lambda: name in [t["name"] for t in figure_data(dash_duo, ids.W_HISTORY) or []],
        what=f"the history of {name}",
    )
    weight = params[params["name"] == name].iloc[0]
    assert component_prop(dash_duo, ids.WEIGHTS, "value")[-1] == name
    assert component_prop(dash_duo, "run-w-layer", "value") == int(weight["layer"])
    assert component_prop(dash_duo, "run-w-neuron", "value") == int(weight["neuron"])
    # the weights section comes into view
    wait_until(
        lambda: abs(dash_duo.driver.execute_script(TOP, ids.WEIGHTS_SECTION)) < 5,
        what="the weights section scrolled to the top",
    )
    assert dash_duo.get_logs() == []


def test_every_chart_indexed_by_step_marks_the_replayed_step(dash_duo, moons):
    db, run_id = moons
    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}?step=7")
    dash_duo.wait_for_element("#run-slider", timeout=20)

    def marked() -> dict[str, set[float]]:
        out = {}
        for chart in run_page.MARKED:
            shapes = (figure_layout(dash_duo, chart) or {}).get("shapes") or []
            out[chart] = {s["x0"] for s in shapes if s.get("name") == "step"}  # one per panel
        return out

    wait_until(lambda: all(marked().values()), what="every chart drawn")
    assert marked() == {chart: {7} for chart in run_page.MARKED}
    set_slider(dash_duo, "run-slider", 23)
    wait_until(lambda: marked() == {c: {23} for c in run_page.MARKED}, what="markers at 23")
    # a chart redrawn later (another weight picked) draws the marker where the slider is
    before = figure_data(dash_duo, ids.W_HISTORY)
    other = tracer.connect(db, readonly=True).run(run_id).parameters()["name"].iloc[5]
    dash_duo.driver.execute_script(
        "window.dash_clientside.set_props(arguments[0], {value: [arguments[1]]})",
        ids.WEIGHTS,
        other,
    )
    wait_until(lambda: figure_data(dash_duo, ids.W_HISTORY) != before, what="the new history")
    assert marked()[ids.W_HISTORY] == {23}
    assert dash_duo.get_logs() == []
