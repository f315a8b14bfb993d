"""The compare page in a real headless Chromium: three runs, one exploding, every
curve readable; two runs that part, linked to the step and node on both pages.

    flock /tmp/gradtrace-browser.lock python -m pytest -m browser --headless \\
        tests/test_compare_browser.py -q
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from gradtrace.dashboard import create_app
from helpers.browser import tick_row, wait_until
from helpers.compare import record_run
from selenium.webdriver.common.by import By

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]
STEPS = 30


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, Any]:
    db = str(tmp_path_factory.mktemp("compare") / "runs.db")
    with pytest.warns(RuntimeWarning, match="NaN/inf"):
        ids = {
            "steady": record_run(db, "steady", steps=STEPS),
            "lr-from-10": record_run(db, "lr-from-10", steps=STEPS, lr_from=(10, 0.2)),
            "exploding": record_run(db, "exploding", steps=STEPS, lr_growth=30.0),
        }
    with tracer.connect(db, readonly=True) as store:
        losses = {k: store.run(v).metrics()["loss"].to_numpy() for k, v in ids.items()}
    return {"db": db, "ids": ids, "loss": losses}


def figure(dash_duo) -> dict | None:
    """The loss chart's figure (the first on the page) as Plotly.js holds it."""
    return dash_duo.driver.execute_script(
        "var g = document.querySelector('#compare-panel-0 .js-plotly-plot');"
        "return g && g.layout && g.data ? JSON.parse(JSON.stringify("
        "{data: g.data, layout: g.layout})) : null;"
    )


def test_three_runs_one_exploding_every_curve_readable(dash_duo, recorded):
    ids, loss = recorded["ids"], recorded["loss"]
    dash_duo.start_server(create_app(recorded["db"]))
    runs = ",".join(ids[k] for k in ("steady", "lr-from-10", "exploding"))
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={runs}")
    fig = wait_until(
        lambda: (f := figure(dash_duo)) and len(f["data"]) >= 3 and f,
        what="the loss chart",
    )
    assert fig["layout"]["title"]["text"] == "loss"
    axis = "yaxis"
    lo, hi = fig["layout"][axis]["range"]
    assert max(v for v in loss["exploding"] if math.isfinite(v)) > 1e200
    assert hi < 100  # not blown up by the exploding run
    for name in ("steady", "lr-from-10"):  # every point of the others is on screen
        finite = [v for v in loss[name] if math.isfinite(v)]
        assert lo <= min(finite) and max(finite) <= hi
        assert (hi - lo) < 4 * (max(finite) - min(finite) + 1e-9)  # and fills the panel
    marks = [t for t in fig["data"] if t.get("mode") == "markers"]
    hover = [t["hovertext"] for t in marks]
    assert any("exploding" in h and "leaves the scale" in h for h in hover)

    # One legend for all the charts, above them, naming every run.
    legend = dash_duo.find_element("#compare-legend").text
    assert all(name in legend for name in ("steady", "lr-from-10", "exploding"))

    # The table has a row per run; the settings diff names the changed knobs.
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#compare-summary tbody tr")
    assert len(rows) == 3 and "exploding" in rows[2].text
    settings = dash_duo.find_element("#compare-diff").text
    assert "config.lr_from" in settings and "status" not in settings

    # Log y: the same panel switches to a log axis, still on the readable scale.
    dash_duo.find_element("#compare-logy input").click()
    fig = wait_until(
        lambda: (f := figure(dash_duo)) and f["layout"][axis].get("type") == "log" and f,
        what="a log y axis",
    )
    lo, hi = fig["layout"][axis]["range"]
    assert hi < 2  # log10 units: below 100
    assert dash_duo.get_logs() == []


def test_two_runs_link_to_the_first_differing_node(dash_duo, recorded):
    ids = recorded["ids"]
    a, b = ids["steady"], ids["lr-from-10"]
    with tracer.connect(recorded["db"], readonly=True) as store:
        expected = store.diff(a, b)
    assert expected.first_param_step == 11 and expected.node_value is not None
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={a},{b}")
    dash_duo.wait_for_contains_text("#compare-first-param", "step 11", timeout=20)
    node = expected.node_value.node
    hrefs = [
        e.get_attribute("href")
        for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".compare-node-value a")
    ]
    assert [h.split(dash_duo.server_url)[1] for h in hrefs] == [
        f"/run/{a}?step=11&node={node}",
        f"/run/{b}?step=11&node={node}",
    ]
    assert "Step 10's update: lr 0.1 vs 0.2" in dash_duo.find_element("#compare-divergence").text


def test_runs_list_selection_opens_the_compare_page(dash_duo, recorded):
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.wait_for_contains_text("#runs-grid", "steady", timeout=20)
    for row in (0, 1):  # the grid may redraw its rows while it settles: find them afresh
        wait_until(lambda row=row: tick_row(dash_duo, row), what=f"row {row} ticked")
    # The panel is drawn again for each tick: follow the link once it names both runs.
    link = wait_until(
        lambda: (
            (a := dash_duo.find_element("#runs-compare-link"))
            and a.get_attribute("href").count(",") == 1
            and a
        ),
        what="the link to two runs",
    )
    link.click()
    wait_until(
        lambda: (f := figure(dash_duo)) and len(f["data"]) >= 2, what="the compare page's figure"
    )
    assert "/compare?runs=" in dash_duo.driver.current_url
