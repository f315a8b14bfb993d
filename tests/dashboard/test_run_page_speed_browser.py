"""The run page's fast paths in a real headless Chromium (dash_duo): the first load
asks no callback before the loss is drawn, and after slider moves the histograms and
the (patched) decision boundary show the numbers of the slider's step.

    python -m pytest tests/test_run_page_speed_browser.py --headless -q
"""

from __future__ import annotations

import numpy as np
import pytest
from gradtrace.dashboard import create_app
from gradtrace.dashboard.app import PLOTLY_BUNDLE
from gradtrace.dashboard.groups import histogram, layer_groups
from gradtrace.tracer.recording.demo import train
from helpers.browser import figure_data, figure_layout, open_run, set_slider, wait_until
from helpers.dash import scalar_score

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

STEPS = 6

# Runs before the page's own scripts: when the loss line and the other metrics'
# lines first appear in the DOM.
LOSS_DRAWN = """
window.gtLossDrawn = null; window.gtMetricsDrawn = null;
new MutationObserver((_, observer) => {
  if (window.gtLossDrawn === null && document.querySelector('#run-loss .scatterlayer .trace')) {
    window.gtLossDrawn = performance.now();
  }
  if (document.querySelector('#run-metrics .scatterlayer .trace')) {
    window.gtMetricsDrawn = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""
REQUESTS = """
return performance.getEntriesByType('resource').map(e => [
  new URL(e.name).pathname, e.startTime, e.responseEnd]);
"""


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("speedb") / "runs.db")
    return db, train("moons", STEPS, db)


def test_first_load_draws_the_loss_before_any_callback(dash_duo, moons):
    db, run_id = moons
    dash_duo.start_server(create_app(db))
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LOSS_DRAWN})
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}?step=2")
    drawn = wait_until(
        lambda: dash_duo.driver.execute_script("return window.gtLossDrawn"), what="the loss"
    )
    requests = dash_duo.driver.execute_script(REQUESTS)
    callbacks = [start for path, start, _ in requests if path.endswith("_dash-update-component")]
    assert callbacks == [] or min(callbacks) > drawn  # the page came with the layout
    (layout_done,) = [end for path, _, end in requests if path.endswith("_dash-layout")]
    (plotly_start,) = [s for path, s, _ in requests if path.endswith(PLOTLY_BUNDLE)]
    assert plotly_start < layout_done  # plotly.js loads alongside, not after the layout
    # the cartesian bundle only: Dash's full plotly.min.js is never fetched
    assert not [path for path, _, _ in requests if path.endswith("plotly.min.js")]
    assert dash_duo.driver.title == f"gradtrace · run {run_id[:8]}"
    # the other metrics follow the loss, drawn from the figure the page came with
    metrics_drawn = wait_until(
        lambda: dash_duo.driver.execute_script("return window.gtMetricsDrawn"), what="metrics"
    )
    assert metrics_drawn >= drawn
    shown = {
        t["name"]: t["y"] for t in figure_data(dash_duo, "run-metrics") if "EMA" not in t["name"]
    }
    logged = tracer.connect(db, readonly=True).run(run_id).metrics()
    assert shown["acc"] == pytest.approx(logged["acc"].tolist())
    assert shown["lr"] == pytest.approx(logged["lr"].tolist())
    dash_duo.wait_for_element("#run-slider", timeout=20)  # the sections below follow
    wait_until(
        lambda: "step 2" in dash_duo.find_element("#run-weight-hist").text,
        what="the histograms at the URL's step",
    )
    assert dash_duo.get_logs() == []


def hist_traces(dash_duo, graph_id: str, step: int) -> list[dict]:
    return wait_until(
        lambda: (
            f"at step {step}"
            in (figure_layout(dash_duo, graph_id) or {}).get("title", {}).get("text", "")
            and figure_data(dash_duo, graph_id)
        ),
        what=f"{graph_id} at step {step}",
    )


def test_slider_moves_show_that_steps_histograms_and_boundary(dash_duo, moons):
    db, run_id = moons
    view = tracer.connect(db, readonly=True).run(run_id)
    groups = layer_groups(view.parameters())
    open_run(dash_duo, db, run_id)
    wait_until(
        lambda: (
            (figure_layout(dash_duo, "run-boundary") or {}).get("title", {}).get("text")
            == f"decision boundary at step {STEPS - 1}"
        ),
        what="the boundary at the last step",
    )
    drawn = figure_data(dash_duo, "run-boundary")
    for step in (1, 3):  # the second move starts from a patched figure
        set_slider(dash_duo, "run-slider", step)
        for graph_id, which in (("run-weight-hist", "data"), ("run-grad-hist", "grad")):
            traces = hist_traces(dash_duo, graph_id, step)
            row = view.param_arrays(steps=[step], which=which).iloc[0].to_numpy()
            assert [t["name"] for t in traces] == list(groups)
            for trace, idx in zip(traces, groups.values()):
                centers, counts, _ = histogram(row[idx])
                assert trace["y"] == counts.tolist(), (graph_id, step, trace["name"])
                np.testing.assert_allclose(trace["x"], centers, rtol=1e-12)
        wait_until(
            lambda step=step: (
                figure_layout(dash_duo, "run-boundary")["title"]["text"]
                == f"decision boundary at step {step}"
            ),
            what=f"the boundary at step {step}",
        )
        shown = figure_data(dash_duo, "run-boundary")
        assert shown[0]["x"] == drawn[0]["x"] and shown[2]["x"] == drawn[2]["x"]  # same grid
        z = np.array(shown[0]["z"], dtype=float)
        params = view.param_arrays(steps=[step], which="data").iloc[0].to_numpy()
        xs, ys = shown[0]["x"], shown[0]["y"]
        for i, j in ((0, 0), (7, 20), (len(xs) - 1, len(ys) - 1)):
            expected = np.clip(scalar_score(view.model_spec, params, xs[i], ys[j]), -3, 3)
            assert z[j][i] == pytest.approx(expected, rel=1e-12, abs=1e-12), (step, i, j)
        assert shown[1]["z"] == shown[0]["z"]  # the 0 contour is drawn on the same scores
    assert dash_duo.get_logs() == []
