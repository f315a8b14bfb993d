"""The divergence story's "show step N, node M" clicked the moment it is visible, in
headless Chromium: the sections below the fold (replay slider, graph) are not
mounted yet, and the click still lands on the story's step with the graph around
its node, however long those sections take to come.

    python -m pytest --headless -q tests/dashboard/test_story_button_browser.py
"""

from __future__ import annotations

import time

import pytest
from gradtrace.dashboard import create_app
from gradtrace.dashboard.pages import run as run_page
from helpers.browser import component_prop, wait_until
from helpers.dash import STEPS

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

# Clicks the story's button from the page itself the moment it has a size (chromedriver's
# get() returns only after the load event, seconds late on a busy machine); notes
# when, and whether the sections below were mounted by then.
FIRST_SIGHT = """
window.gtClicked = null;
(function poll() {
  const b = document.querySelector('#run-story-go');
  if (b && b.getBoundingClientRect().height > 0) {
    window.gtClicked = {t: performance.now(), mounted: !!document.querySelector('#run-slider')};
    b.click();
  } else {
    setTimeout(poll, 2);
  }
})();
"""
CY = "const cy = document.querySelector('#run-cyto')._cyreg.cy;"
IN_VIEW = (
    "const r = document.querySelector('#run-cyto').getBoundingClientRect();"
    "return r.height > 0 && r.top < window.innerHeight && r.bottom > 0;"
)
# seconds the sections below take to mount: as they come, and slower than the
# 10 s the button used to wait for them before giving up
MOUNT = {"as-they-come": 0.0, "after-12s": 12.0}


@pytest.mark.parametrize("mount", list(MOUNT))
def test_story_button_clicked_at_first_sight_lands_on_its_step_and_node(
    dash_duo, diverged, monkeypatch, mount
):
    db, run_id = diverged
    bad = tracer.connect(db, readonly=True).run(run_id).first_nonfinite()
    assert bad.node is not None and bad.step != STEPS - 1  # not where the page opens
    below = run_page.below

    def slow_below(*args):
        time.sleep(MOUNT[mount])
        return below(*args)

    monkeypatch.setattr(run_page, "below", slow_below)
    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": FIRST_SIGHT}
    )
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    clicked = wait_until(
        lambda: dash_duo.driver.execute_script("return window.gtClicked"), what="the click"
    )
    assert clicked["mounted"] is False  # before the slider and the graph were there
    wait_until(
        lambda: (
            component_prop(dash_duo, "run-slider", "value") == bad.step
            and component_prop(dash_duo, "run-g-mode", "value") == "node"
            and component_prop(dash_duo, "run-g-node", "value") == bad.node
        ),
        timeout=MOUNT[mount] + 30,
        what=f"the slider on step {bad.step}, the graph around node {bad.node}",
    )
    selected = wait_until(
        lambda: (
            dash_duo.driver.execute_script(CY + "return cy.$('node:selected').map(e => e.id());")
            if f"node\n{bad.node}" in dash_duo.find_element("#run-g-detail").text
            else None
        ),
        what="the node selected and its detail shown",
    )
    assert selected == [str(bad.node)]
    assert f"step {bad.step}: node {bad.node}" in dash_duo.find_element("#run-g-note").text
    wait_until(lambda: dash_duo.driver.execute_script(IN_VIEW), what="the graph in view")
    assert dash_duo.get_logs() == []
