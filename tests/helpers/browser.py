"""Shared test helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gradtrace.dashboard import create_app
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys


def wait_until(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; return that."""
    end = time.time() + timeout
    last: Any = None
    while time.time() < end:
        try:
            last = check()
        except Exception as e:  # the page may be mid-render
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def tick_row(dash_duo, row: int) -> bool:
    """Tick the runs grid's checkbox of ``row``; True once it is ticked."""
    boxes = dash_duo.driver.find_elements(
        By.CSS_SELECTOR, "#runs-grid .ag-row input[type=checkbox]"
    )
    if not boxes[row].is_selected():
        boxes[row].click()
    return boxes[row].is_selected()


def figure_data(dash_duo, graph_id: str) -> list[dict] | None:
    """The traces Plotly drew in dcc.Graph ``graph_id``."""
    return dash_duo.driver.execute_script(
        f"var g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g.data ? JSON.parse(JSON.stringify(g.data)) : null;"
    )


def figure_layout(dash_duo, graph_id: str) -> dict | None:
    return dash_duo.driver.execute_script(
        f"var g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g.layout ? JSON.parse(JSON.stringify(g.layout)) : null;"
    )


def component_prop(dash_duo, component_id: str, prop: str) -> Any:
    """A prop of a rendered component, read from Dash's renderer store."""
    return dash_duo.driver.execute_script(
        """
        var s = window.store.getState(), path = s.paths.strs[arguments[0]];
        if (!path) { return null; }
        var node = s.layout;
        for (var i = 0; i < path.length; i++) { node = node[path[i]]; }
        return node && node.props ? node.props[arguments[1]] : null;
        """,
        component_id,
        prop,
    )


def pick(dash_duo, dropdown_id: str, option_text: str) -> None:
    """Open a Dash 4 dropdown and click the option with this text."""
    dash_duo.find_element(f"#{dropdown_id}").click()
    option = wait_until(
        lambda: [
            o
            for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")
            if o.text.strip() == option_text
        ],
        what=f"option {option_text!r} of #{dropdown_id}",
    )[0]
    option.click()
    dash_duo.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


def set_slider(dash_duo, slider_id: str, value: int) -> None:
    """Type a value into a Dash 4 slider's number box; leaving the box commits it."""
    box = dash_duo.find_element(f"#{slider_id} input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def open_run(dash_duo, db: str, run_id: str) -> None:
    dash_duo.start_server(create_app(db))
    dash_duo.driver.get(f"{dash_duo.server_url}/run/{run_id}")
    dash_duo.wait_for_element("#run-name", timeout=20)
    dash_duo.wait_for_element("#run-slider", timeout=20)  # the sections below the curves
