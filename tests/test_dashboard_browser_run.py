"""The run page in headless Chromium: a diverging run, URL state, designed states.

    flock /tmp/gradtrace-browser.lock python -m pytest -m browser --headless \
        tests/test_dashboard_browser_run.py -q
"""

from __future__ import annotations

import pytest
from gradtrace.dashboard import create_app
from test_dashboard_browser import component_prop, set_slider, wait_until
from test_dashboard_divergence import STEPS, diverging_run

from gradtrace import tracer

pytest_plugins = ["browser_conftest"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("div") / "div.db")
    return db, diverging_run(db)


def visible_without_scrolling(dash_duo, selector: str) -> bool:
    return dash_duo.driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
        selector,
    )


def test_diverging_run_story_on_top_every_step_without_errors(dash_duo, diverged):
    db, run_id = diverged
    bad = tracer.connect(db, readonly=True).run(run_id).first_nonfinite()
    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    dash_duo.wait_for_element("#run-story", timeout=20)
    assert visible_without_scrolling(dash_duo, "#run-story")
    assert dash_duo.find_element("#run-diverged").text == f"diverged at step {bad['step']}"
    for step in range(STEPS):
        set_slider(dash_duo, "run-slider", step)
        wait_until(
            lambda step=step: (
                f"step {step}" in dash_duo.find_element("#run-weight-hist").text
            ),
            what=f"the histograms of step {step}",
        )
    set_slider(dash_duo, "run-slider", 0)
    wait_until(lambda: component_prop(dash_duo, "run-slider", "value") == 0, what="step 0")
    dash_duo.find_element("#run-story-go").click()
    wait_until(
        lambda: component_prop(dash_duo, "run-slider", "value") == bad["step"],
        what="the slider at the divergence step",
    )
    assert component_prop(dash_duo, "run-g-node", "value") == bad["node"]
    assert dash_duo.get_logs() == []  # no failed callback at any step


def test_url_step_restores_the_view_and_unknown_run_has_a_way_back(dash_duo, diverged):
    db, run_id = diverged
    dash_duo.start_server(create_app(db))
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}?step=3")
    dash_duo.wait_for_element("#run-name", timeout=20)
    assert component_prop(dash_duo, "run-slider", "value") == 3
    wait_until(
        lambda: "step 3" in dash_duo.find_element("#run-weight-hist").text,
        what="the histograms of the URL's step",
    )
    dash_duo.driver.get(f"{dash_duo.server_url}/run/no-such-run")
    dash_duo.wait_for_element("#run-missing", timeout=20)
    assert "no-such-run" in dash_duo.find_element("#run-missing").text
    dash_duo.find_element(".not-found a").click()
    dash_duo.wait_for_element("#runs-grid", timeout=20)
