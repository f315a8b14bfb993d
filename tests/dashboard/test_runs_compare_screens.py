"""The runs list, the compare page and the 404 page in headless Chromium at a desktop
(1440x900) and a phone (390x844) viewport: one way to show NaN (and sort it last),
the list's view kept in the address and restored on Back, the compare page's
settings naming a schedule difference, a bad id that keeps the valid run, the same
colour for a run on both pages, and no page wider than its screen.

    python -m pytest --headless -q tests/dashboard/test_runs_compare_screens.py
"""

from __future__ import annotations

import math
import warnings
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from gradtrace.dashboard import create_app
from gradtrace.tracer.display import number
from helpers.browser import tick_row, wait_until
from helpers.compare import record_run
from helpers.screens import BOTH, sideways, viewport
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]
STEPS = 12
PHONE_COLUMNS = ["name", "status", "diverged_at_step", "metric.loss"]

# Every row of the runs grid as {col-id: text}, the pinned and the scrolled parts joined;
# null until every row has a cell of every column the grid displays: AG Grid draws a
# row's cells over several frames, and on a busy machine a row read between two of
# them has its first columns and not its last (config.width, at load 5).
GRID_JS = """
const shown = dash_ag_grid.getApi('runs-grid').getAllDisplayedColumns().map(c => c.getColId());
const rows = {};
document.querySelectorAll('#runs-grid .ag-row').forEach(r => {
  const i = +r.getAttribute('row-index');
  rows[i] = rows[i] || {};
  r.querySelectorAll('.ag-cell[col-id]').forEach(c => {
    rows[i][c.getAttribute('col-id')] = c.innerText.trim();
  });
});
const out = Object.keys(rows).sort((a, b) => a - b).map(k => rows[k]);
return out.every(r => shown.every(c => c in r)) ? out : null;
"""


def record(db: str, name: str, lr: float, config: dict) -> str:
    """``STEPS`` steps of SGD at a constant ``lr`` on the small moons model."""
    return record_run(db, name, steps=STEPS, lr=lr, config=config)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, Any]:
    db = str(tmp_path_factory.mktemp("screens") / "runs.db")
    ids = {
        # the same config: only the optimizer's rate (a logged schedule) differs
        "steady-a": record(db, "steady-a", 1.0, {"width": 16}),
        "steady-b": record(db, "steady-b", 1.2, {"width": 16}),
        "textual": record(db, "textual", 0.8, {"width": "wide"}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recorder warns at the first NaN
        ids["exploding"] = record_run(db, "exploding", steps=30, lr_growth=30.0)
    with tracer.connect(db, readonly=True) as store:
        runs = store.runs().set_index("name")
        diff = store.diff(ids["steady-a"], ids["steady-b"])
    loss = runs["metric.loss"].to_dict()
    assert math.isnan(loss["exploding"]) and not math.isnan(loss["steady-a"])
    return {"db": db, "ids": ids, "loss": loss, "diff": diff, "runs": runs}


def grid(dash_duo) -> list[dict[str, str]] | None:
    """The grid's rows (``GRID_JS``), None while their cells are being drawn."""
    return dash_duo.driver.execute_script(GRID_JS)


def wait_grid(dash_duo, check, what: str) -> list[dict[str, str]]:
    """The grid's rows once they are all drawn and pass ``check``."""
    seen: list = []

    def ready():
        g = grid(dash_duo)
        seen[:] = [names(g) if g is not None else "cells still being drawn"]
        return g is not None and check(g) and g

    try:
        return wait_until(ready, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; the grid's names: {seen}") from None


def full(rows: list[dict[str, str]], n: int = 4) -> bool:
    """``n`` rows, each drawn (the grid renders cells a moment after rows)."""
    return len(rows) == n and all(r.get("name") and r.get("metric.loss") for r in rows)


def names(rows: list[dict[str, str]]) -> list[str]:
    return [r.get("name") for r in rows]


def sort_by(dash_duo, col: str) -> None:
    dash_duo.find_element(
        f"#runs-grid .ag-header-cell[col-id='{col}'] .ag-header-cell-label"
    ).click()


def query(dash_duo) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(dash_duo.driver.current_url).query).items()}


def assert_fits(dash_duo) -> None:
    page, screen = sideways(dash_duo)
    assert page <= screen, f"the page is {page} px wide on a {screen} px screen"


@BOTH
def test_runs_list_shows_nan_as_nan_and_sorts_it_last(dash_duo, recorded, size):
    viewport(dash_duo, size)
    dash_duo.start_server(create_app(recorded["db"]))
    rows = wait_grid(dash_duo, full, "four runs")
    by_name = {r["name"]: r for r in rows}
    assert by_name["exploding"]["metric.loss"] == "NaN"
    assert "diverged" in by_name["exploding"]["status"]
    digits = 4 if size == "phone" else 6  # a phone's narrow column: fewer digits
    for name in ("steady-a", "steady-b", "textual"):  # the Python formatter's very text
        assert by_name[name]["metric.loss"] == number(recorded["loss"][name], digits)
        assert "diverged" not in by_name[name]["status"]
    finite = sorted((n for n in by_name if n != "exploding"), key=recorded["loss"].get)
    assert len({recorded["loss"][n] for n in finite}) == 3  # no ties: one right order
    sort_by(dash_duo, "metric.loss")  # ascending: NaN is not the best
    wait_grid(dash_duo, lambda g: names(g) == [*finite, "exploding"], "ascending, NaN last")
    sort_by(dash_duo, "metric.loss")  # descending: NaN is not the worst either
    wait_grid(dash_duo, lambda g: names(g) == [*finite[::-1], "exploding"], "descending, NaN last")
    shown = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#runs-grid .ag-header-cell[col-id]'))"
        ".filter(h => h.offsetWidth > 0).map(h => h.getAttribute('col-id'))"
    )
    columns = [c for c in shown if not c.startswith("ag-Grid")]  # the tick column
    if size == "phone":
        assert columns == PHONE_COLUMNS
    else:
        assert set(PHONE_COLUMNS) < set(columns) and "config.width" in columns
        assert "Invalid Number" not in dash_duo.find_element("#runs-grid").text
        assert by_name["textual"]["config.width"] == "wide"
        assert by_name["steady-a"]["config.width"] == "16"
        assert dash_duo.driver.execute_script(  # the name stays in view when scrolled
            "return !!document.querySelector('#runs-grid .ag-pinned-left-cols-container "
            "[col-id=name]')"
        )
    assert_fits(dash_duo)
    assert dash_duo.get_logs() == []


def test_grid_numbers_read_as_the_python_formatter_writes_them(dash_duo, recorded):
    values = [0.000123456, 1 / 3, -2.5e300, 1e-5, 123456789.0, 9.999995, 0.1, 100.0,
              1e16, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 42.0, 0.5]  # fmt: skip
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.wait_for_element("#runs-grid")
    js = dash_duo.driver.execute_script(
        "const f = window.dashAgGridFunctions;"
        "return [arguments[0].map(v => f.gtNumber(v)), arguments[0].map(v => f.gtNumber(v, 4)),"
        " ['NaN', 'inf', '-inf', null, 'text'].map(v => f.gtNumber(v))]",
        values,
    )
    assert js[0] == [number(v) for v in values]
    assert js[1] == [number(v, 4) for v in values]
    assert js[2] == [number(math.nan), number(math.inf), number(-math.inf), number(None), "text"]


def test_runs_list_view_lives_in_the_address_and_comes_back(dash_duo, recorded):
    ids = recorded["ids"]
    viewport(dash_duo, "desktop")
    dash_duo.start_server(create_app(recorded["db"]))
    wait_grid(dash_duo, full, "four runs")
    dash_duo.find_element("#runs-search").send_keys("steady")
    dash_duo.wait_for_text_to_equal("#runs-count", "2 of 4 runs")
    sort_by(dash_duo, "metric.loss")
    steady = sorted(["steady-a", "steady-b"], key=recorded["loss"].get)
    wait_grid(dash_duo, lambda g: names(g) == steady, "the two steady runs by loss")
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApi('runs-grid').setFilterModel("
        "{steps: {filterType: 'number', type: 'greaterThan', filter: 5}})"
    )
    wait_until(lambda: tick_row(dash_duo, 0), what="row 0 ticked")
    want = {
        "q": "steady",
        "sort": "metric.loss",
        "sel": ids[steady[0]],
        "filter": '{"steps":{"filterType":"number","type":"greaterThan","filter":5}}',
    }
    wait_until(lambda: query(dash_duo) == want, what=f"the address to say {want}")

    # Away to a run's page and Back: the same list, ticks and all.
    dash_duo.driver.find_elements(By.CSS_SELECTOR, "#runs-grid a.run-link")[1].click()
    dash_duo.wait_for_element("#run-name", timeout=20)
    dash_duo.driver.back()
    wait_grid(dash_duo, lambda g: names(g) == steady, "the list as it was")
    assert dash_duo.find_element("#runs-search").get_attribute("value") == "steady"
    dash_duo.wait_for_text_to_equal("#runs-count", "2 of 4 runs")
    api = "const a = dash_ag_grid.getApi('runs-grid');"
    ticked, model = wait_until(
        lambda: (
            (
                r := dash_duo.driver.execute_script(
                    api + "return [a.getSelectedRows().map(r => r.id), a.getFilterModel()];"
                )
            )
            and r[0]
            and r
        ),
        what="the tick restored",
    )
    assert ticked == [ids[steady[0]]]
    assert model == {"steps": {"filterType": "number", "type": "greaterThan", "filter": 5}}
    assert query(dash_duo) == want

    # A link with ?q= (where the 404 page's search goes) filters on arrival.
    dash_duo.driver.get(f"{dash_duo.server_url}/?q=exploding")
    dash_duo.wait_for_text_to_equal("#runs-count", "1 of 4 runs")
    wait_grid(dash_duo, lambda g: names(g) == ["exploding"], "the one run the link asks for")
    assert dash_duo.get_logs() == []


@BOTH
def test_unknown_path_gets_a_404_page_with_a_way_home(dash_duo, recorded, size):
    viewport(dash_duo, size)
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.driver.get(f"{dash_duo.server_url}/no/such/<page>")
    dash_duo.wait_for_text_to_equal("#notfound-card h2", "Page not found")
    dash_duo.wait_for_text_to_equal("#notfound-path", "/no/such/%3Cpage%3E")
    assert dash_duo.find_element("#notfound-home").get_attribute("href").endswith("/")
    assert_fits(dash_duo)
    box = dash_duo.find_element("#notfound-search")
    box.send_keys("textual", Keys.ENTER)
    dash_duo.wait_for_text_to_equal("#runs-count", "1 of 4 runs")
    assert query(dash_duo) == {"q": "textual"}
    assert dash_duo.get_logs() == []


def panels(dash_duo) -> list[dict]:
    """Each compare chart: its title, the box of its title and of its plot area."""
    return dash_duo.driver.execute_script(
        """
        const box = e => { const b = e.getBoundingClientRect();
          return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; };
        return Array.from(document.querySelectorAll('#compare-metrics .compare-panel'))
          .map(p => ({title: p.querySelector('.gtitle') && p.querySelector('.gtitle').textContent,
                      titleBox: p.querySelector('.gtitle') && box(p.querySelector('.gtitle')),
                      plot: p.querySelector('.nsewdrag') && box(p.querySelector('.nsewdrag')),
                      panel: box(p),
                      colours: (p.querySelector('.js-plotly-plot').data || [])
                        .filter(t => t.mode === 'lines').map(t => [t.name, t.line.color])}));
        """
    )


@BOTH
def test_compare_names_the_schedule_difference_and_fits(dash_duo, recorded, size):
    a, b = recorded["ids"]["steady-a"], recorded["ids"]["steady-b"]
    viewport(dash_duo, size)
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={a},{b}")
    got = wait_until(lambda: (p := panels(dash_duo)) and all(x["plot"] for x in p) and p,
                     what="the compare charts")  # fmt: skip
    assert [p["title"] for p in got] == ["loss", "acc"]  # loss first
    for p in got:  # each title over its own plot, inside its own chart
        assert p["titleBox"]["bottom"] <= p["plot"]["top"] + 2
        assert p["panel"]["left"] <= p["titleBox"]["left"] < p["plot"]["right"]
    if size == "phone":  # stacked, each the card's full width
        assert got[1]["panel"]["top"] >= got[0]["panel"]["bottom"]
        card = dash_duo.find_element("#compare-metrics").rect["width"]
        assert all(abs((p["panel"]["right"] - p["panel"]["left"]) - card) < 2 for p in got)
    else:  # side by side
        assert got[0]["panel"]["top"] == got[1]["panel"]["top"]

    # The config is the same; the optimizer's rate is not, from the first update on.
    row = wait_until(lambda: dash_duo.find_element("#compare-diff .schedule-row"), what="lr row")
    assert "lr (schedule)" in row.text and "first differs at step 0" in row.text
    cells = row.find_elements(By.CSS_SELECTOR, "td")
    assert [c.text for c in cells[1:]] == ["1 at step 0", "1.2 at step 0"]
    assert "config.width" not in dash_duo.find_element("#compare-diff").text

    # Numbers at 6 digits, the exact value on hover; the first divergence names the parameter.
    loss = recorded["loss"]["steady-a"]
    final = dash_duo.find_elements("#compare-summary tbody tr")[0].find_elements(
        By.CSS_SELECTOR, "td .num"
    )[0]
    assert final.text == number(loss) and final.get_attribute("title") == repr(loss)
    d = recorded["diff"]
    assert d.node_value is not None and d.node_value.param
    text = dash_duo.find_element(".compare-node-value").text
    assert f"parameter {d.node_value.param}" in text
    assert_fits(dash_duo)
    assert dash_duo.get_logs() == []


def test_compare_log_y_and_smoothing_live_in_the_address(dash_duo, recorded):
    a, b = recorded["ids"]["steady-a"], recorded["ids"]["exploding"]
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={a},{b}")
    wait_until(lambda: len(panels(dash_duo)) == 2, what="two charts")
    dash_duo.find_element("#compare-logy input").click()
    handle = dash_duo.find_element("#compare-smoothing [role=slider]")
    handle.send_keys(*[Keys.ARROW_RIGHT] * 12)  # 12 steps of 0.05
    wait_until(
        lambda: query(dash_duo) == {"runs": f"{a},{b}", "logy": "1", "smooth": "0.6"},
        what="log y and smoothing in the address",
    )
    dash_duo.driver.refresh()
    loss_axis = (
        "var g = document.querySelector('#compare-panel-0 .js-plotly-plot');"
        "return g && g.layout ? g.layout.yaxis.type : null;"
    )
    wait_until(lambda: dash_duo.driver.execute_script(loss_axis) == "log", what="log y restored")
    assert dash_duo.find_element("#compare-logy input").is_selected()
    assert dash_duo.find_element("#compare-smoothing input").get_attribute("value") == "0.6"
    assert dash_duo.get_logs() == []


@BOTH
def test_compare_bad_id_keeps_the_valid_run(dash_duo, recorded, size):
    a = recorded["ids"]["steady-a"]
    viewport(dash_duo, size)
    dash_duo.start_server(create_app(recorded["db"]))
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={a},no-such-run")
    dash_duo.wait_for_contains_text("#compare-bad", "1 of 2 runs not found", timeout=20)
    assert "no-such-run" in dash_duo.find_element("#compare-bad").text
    dash_duo.wait_for_contains_text("#compare-legend", "steady-a")
    got = wait_until(lambda: (p := panels(dash_duo)) and len(p) == 2 and p, what="charts")
    assert [len(p["colours"]) for p in got] == [1, 1]  # the valid run, drawn
    rows = dash_duo.find_elements("#compare-summary tbody tr")
    assert len(rows) == 1 and "steady-a" in rows[0].text
    assert_fits(dash_duo)

    # No runs at all: a message, not an empty chart.
    dash_duo.driver.get(f"{dash_duo.server_url}/compare")
    dash_duo.wait_for_contains_text("#compare-empty", "No runs to compare", timeout=20)
    assert panels(dash_duo) == []
    assert_fits(dash_duo)
    assert dash_duo.get_logs() == []


def test_a_run_keeps_its_colour_from_the_runs_list_to_the_compare_page(dash_duo, recorded):
    dash_duo.start_server(create_app(recorded["db"]))
    wait_grid(dash_duo, full, "four runs")
    for row in (2, 0):  # ticked in the other order than the list shows them
        wait_until(lambda row=row: tick_row(dash_duo, row), what=f"row {row} ticked")
    on_list = wait_until(
        lambda: dash_duo.driver.execute_script(
            "var g = document.querySelector('#runs-compare-loss .js-plotly-plot');"
            "return g && g.data && g.data.length === 2 ?"
            " g.data.map(t => [t.name, t.line.color]) : null;"
        ),
        what="two loss curves on the runs list",
    )
    assert on_list[0][1] != on_list[1][1]
    dash_duo.find_element("#runs-compare-link").click()
    got = wait_until(lambda: (p := panels(dash_duo)) and p[0]["colours"] and p, what="charts")
    assert sorted(got[0]["colours"]) == sorted(on_list)
    # The same runs listed the other way round, with a third: still the same colours.
    ids = query(dash_duo)["runs"].split(",")[::-1]
    ids.append(next(i for i in recorded["ids"].values() if i not in ids))
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={','.join(ids)}")
    got = wait_until(
        lambda: (p := panels(dash_duo)) and len(p[0]["colours"]) == 3 and p, what="three runs"
    )
    assert set(map(tuple, on_list)) < set(map(tuple, got[0]["colours"]))
