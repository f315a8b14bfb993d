"""The run page in headless Chromium: a diverging run, URL state, designed states.

    flock /tmp/gradtrace-browser.lock python -m pytest -m browser --headless \
        tests/test_dashboard_browser_run.py -q
"""

from __future__ import annotations

import math
import threading
from unittest.mock import ANY
from urllib.parse import parse_qsl, urlsplit

import pytest
from gradtrace.dashboard import create_app
from gradtrace.tracer.recording.demo import train
from gradtrace.tracer.storage.db import open_database
from helpers.browser import component_prop, figure_data, pick, set_slider, wait_until
from helpers.dash import STEPS
from selenium.webdriver.common.keys import Keys

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


def query(dash_duo, path: str) -> dict[str, str] | None:
    """The address bar's query as a dict, None while it is on another path."""
    url = urlsplit(dash_duo.driver.current_url)
    return dict(parse_qsl(url.query)) if url.path == path else None


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
    dash_duo.wait_for_element("#run-slider", timeout=20)
    assert dash_duo.find_element("#run-diverged").text == f"diverged at step {bad.step}"
    for step in range(STEPS):
        set_slider(dash_duo, "run-slider", step)
        wait_until(
            lambda step=step: f"step {step}" in dash_duo.find_element("#run-weight-hist").text,
            what=f"the histograms of step {step}",
        )
    set_slider(dash_duo, "run-slider", 0)
    wait_until(lambda: component_prop(dash_duo, "run-slider", "value") == 0, what="step 0")
    dash_duo.find_element("#run-story-go").click()
    wait_until(
        lambda: component_prop(dash_duo, "run-slider", "value") == bad.step,
        what="the slider at the divergence step",
    )
    assert component_prop(dash_duo, "run-g-node", "value") == bad.node
    assert dash_duo.get_logs() == []  # no failed callback at any step


def test_url_step_restores_the_view_and_unknown_run_has_a_way_back(dash_duo, diverged):
    db, run_id = diverged
    dash_duo.start_server(create_app(db))
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}?step=3&node=5")
    dash_duo.wait_for_element("#run-name", timeout=20)
    dash_duo.wait_for_element("#run-slider", timeout=20)
    assert component_prop(dash_duo, "run-slider", "value") == 3
    assert component_prop(dash_duo, "run-g-mode", "value") == "node"
    assert component_prop(dash_duo, "run-g-node", "value") == 5
    wait_until(
        lambda: "step 3" in dash_duo.find_element("#run-weight-hist").text,
        what="the histograms of the URL's step",
    )
    wait_until(
        lambda: "node 5 and its neighbours" in dash_duo.find_element("#run-g-note").text,
        what="the graph around the URL's node",
    )
    set_slider(dash_duo, "run-slider", 2)
    wait_until(
        lambda: query(dash_duo, f"/run/{run_id}") == {"step": "2", "node": "5", "weights": ANY},
        what="the address bar to follow the view",
    )
    dash_duo.driver.get(f"{dash_duo.server_url}/run/no-such-run")
    dash_duo.wait_for_element("#run-missing", timeout=20)
    assert "no-such-run" in dash_duo.find_element("#run-missing").text
    dash_duo.find_element(".not-found a").click()
    dash_duo.wait_for_element("#runs-grid", timeout=20)


OVERFLOWING = """
const W = window.innerWidth, out = [];
function clipped(el) {
  for (let p = el.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (s.overflowX !== 'visible' && p.getBoundingClientRect().right <= W + 1) return true;
  }
  return false;
}
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  if (r.width === 0 || r.right <= 0 || s.visibility === 'hidden' || s.opacity === '0') continue;
  if ((r.right > W + 1 || r.left < -1) && !clipped(el)) {
    out.push(`${el.tagName}#${el.id}.${el.className} ${Math.round(r.right)}`);
  }
}
return [document.documentElement.scrollWidth, W, out.slice(0, 10)];
"""


def test_phone_width_is_one_column_without_horizontal_overflow(dash_duo, diverged):
    db, run_id = diverged
    dash_duo.start_server(create_app(db))
    # Headless Chromium will not make a window narrower than 500 px: emulate the phone.
    dash_duo.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    dash_duo.wait_for_element("#run-name", timeout=20)
    wait_until(lambda: "step" in dash_duo.find_element("#run-weight-hist").text, what="replay")
    wait_until(lambda: component_prop(dash_duo, "run-cyto", "elements"), what="the graph")
    scroll, width, wide = dash_duo.driver.execute_script(OVERFLOWING)
    assert width == 390
    assert scroll <= width and wide == [], wide
    cyto = dash_duo.driver.execute_script(
        "return document.querySelector('#run-cyto').getBoundingClientRect().width"
    )
    assert cyto > 300  # the graph canvas spans the screen, its side panel below


def test_enter_applies_a_typed_step_and_the_breadcrumb_goes_home(dash_duo, diverged):
    db, run_id = diverged
    dash_duo.start_server(create_app(db))
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    dash_duo.wait_for_element("#run-name", timeout=20)
    box = dash_duo.wait_for_element("#run-slider input", timeout=20)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("2", Keys.ENTER)
    wait_until(lambda: component_prop(dash_duo, "run-slider", "value") == 2, what="step 2 on Enter")
    dash_duo.find_element("#crumb-runs").click()
    dash_duo.wait_for_element("#runs-grid", timeout=20)


def test_empty_database_shows_the_demo_command(dash_duo, tmp_path):
    db = str(tmp_path / "empty.db")
    open_database(db).dispose()  # an empty gradtrace database (a reader never creates one)
    dash_duo.start_server(create_app(db))
    dash_duo.wait_for_element("#runs-empty", timeout=20)
    assert dash_duo.find_element("#runs-empty-command").text == f"gradtrace demo --db {db}"


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("moons") / "moons.db")
    return db, train("moons", steps=8, db=db, seed=5)


def shown_number(text: str) -> float:
    """A number as the page prints it (4 significant digits)."""
    return float(text.strip())


def test_summary_strip_numbers_are_the_databases(dash_duo, moons):
    """Loss start → final, best @ step, final accuracy, steps and nodes per step, as the
    page shows them, against what the query API reads from the same file; the graph
    view's leaves carry the kinds stored for them."""
    db, run_id = moons
    run = tracer.connect(db, readonly=True).run(run_id)
    metrics = run.metrics()
    loss, acc = metrics["loss"], metrics["acc"]
    last = int(metrics.index.max())
    nodes = run.nodes(last)

    dash_duo.start_server(create_app(db))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    dash_duo.wait_for_element("#run-summary", timeout=20)
    text = {
        key: dash_duo.find_element(f"#run-{key}").text
        for key in ("sum-loss", "sum-best", "sum-acc", "steps", "sum-nodes")
    }
    start, final = map(shown_number, text["sum-loss"].split("→"))
    best, best_step = text["sum-best"].split("@")
    assert math.isclose(start, loss.iloc[0], rel_tol=5e-4), text
    assert math.isclose(final, loss.iloc[-1], rel_tol=5e-4), text
    assert math.isclose(shown_number(best), loss.min(), rel_tol=5e-4), text
    assert int(best_step) == int(loss.idxmin()) and loss.idxmin() != 0  # it learned
    assert math.isclose(shown_number(text["sum-acc"]), acc.iloc[-1], rel_tol=5e-4), text
    assert int(text["steps"]) == len(metrics) == run.info["steps"] == last + 1
    assert int(text["sum-nodes"]) == len(nodes) > 0

    wait_until(lambda: component_prop(dash_duo, "run-cyto", "elements"), what="the graph")
    elements = component_prop(dash_duo, "run-cyto", "elements")
    vertices = [e["data"] for e in elements if "source" not in e["data"]]
    kinds = {v["kind"] for v in vertices}
    assert {"parameter", "input"} <= kinds, kinds
    for v in vertices:
        assert v["kind"] == nodes.loc[int(v["id"]), "kind"], v
    key = dash_duo.find_element("#run-g-key").text
    assert all(word in key for word in ("parameter", "input", "constant", "target")), key
    assert dash_duo.get_logs() == []


def test_url_weights_restore_the_picker_and_follow_it(dash_duo, diverged):
    db, run_id = diverged
    names = tracer.connect(db, readonly=True).run(run_id).parameters()["name"].tolist()
    wanted = names[1:3]
    dash_duo.start_server(create_app(db))
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}?step=2&weights={','.join(wanted)}")
    history = wait_until(
        lambda: [t["name"] for t in figure_data(dash_duo, "run-w-history") or []],
        timeout=20,
        what="the URL's weights plotted",
    )
    assert history[0] == wanted[0] and wanted[1] in history
    assert component_prop(dash_duo, "run-w-param", "value") == wanted
    assert query(dash_duo, f"/run/{run_id}")["weights"] == ",".join(wanted)
    pick(dash_duo, "run-w-param", names[0])
    wait_until(
        lambda: query(dash_duo, f"/run/{run_id}")["weights"] == ",".join([*wanted, names[0]]),
        what="the address bar to carry the picked weights",
    )


# the weights histogram's box: its height, whether it has axes, its background
HIST_LOOK = (
    "const g = document.querySelector('#run-weight-hist');"
    "return [g.getBoundingClientRect().height, !!g.querySelector('.xtick'),"
    " getComputedStyle(g.querySelector('.main-svg')).backgroundColor];"
)
SKELETON = [260, False, "rgb(236, 239, 243)"]


def test_sections_below_are_skeletons_of_their_size_until_drawn(dash_duo, diverged, monkeypatch):
    """The server holds the sections below, then the replay's histograms, until the
    test has read the skeleton in their place: what is read is the page a slow
    server leaves, however long a busy browser takes to let the test read it (with
    a delay instead, a read late by the delay saw the drawn histograms)."""
    from gradtrace.dashboard import stepfigures
    from gradtrace.dashboard.pages import run as run_page

    db, run_id = diverged
    mount, draw = run_page.below, stepfigures.histograms_figure
    mounting, drawing = threading.Event(), threading.Event()

    def held_mount(*args):
        mounting.wait(60)
        return mount(*args)

    def held_draw(*args):
        drawing.wait(60)
        return draw(*args)

    monkeypatch.setattr(run_page, "below", held_mount)
    monkeypatch.setattr(stepfigures, "histograms_figure", held_draw)
    try:
        dash_duo.start_server(create_app(db))
        dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
        dash_duo.wait_for_element("#run-name", timeout=20)
        heights = dash_duo.driver.execute_script(
            "return Array.from(document.querySelectorAll('#run-below > .card'))"
            ".map(c => [c.getBoundingClientRect().height, !!c.querySelector('.skeleton')])"
        )
        assert heights == [[h, True] for _, h in run_page.BELOW_HEIGHTS]
        mounting.set()
        dash_duo.wait_for_element("#run-weight-hist .main-svg", timeout=20)
        # the histograms are held: nothing can replace what is drawn there now
        assert dash_duo.driver.execute_script(HIST_LOOK) == SKELETON  # grey, its height, no axes
        drawing.set()
        drawn = wait_until(
            lambda: (
                "step" in dash_duo.find_element("#run-weight-hist").text
                and dash_duo.driver.execute_script(HIST_LOOK)
            ),
            what="the histograms drawn",
        )
        assert drawn[1] is True  # axes, once drawn
    finally:
        mounting.set()
        drawing.set()


def test_notebook_frame_url_renders_the_run_page(dash_duo, diverged, monkeypatch):
    """gradtrace.show() frames ``<url>/``: the page under that address is the run's."""
    import dash

    import gradtrace

    db, run_id = diverged
    shown = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: shown.append((self, kw)))
    gradtrace.show(run_id, db=db)
    ((app, kw),) = shown
    monkeypatch.undo()
    dash_duo.start_server(app)
    framed = kw["jupyter_server_url"].replace("http://127.0.0.1:8050", dash_duo.server_url)
    dash_duo.driver.get(framed + "/")  # Dash's Jupyter mode appends the root prefix
    dash_duo.wait_for_element("#run-slider", timeout=20)
    assert component_prop(dash_duo, "run-id", "data") == run_id
