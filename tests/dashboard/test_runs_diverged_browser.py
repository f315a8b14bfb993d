"""The runs list flags diverged runs, in a real headless Chromium (dash_duo).

    flock /tmp/gradtrace-browser.lock python -m pytest -m browser --headless \\
        tests/test_runs_diverged_browser.py -q
"""

from __future__ import annotations

import time
import warnings

import pytest
from gradtrace.dashboard import create_app
from gradtrace.engine import Value

from gradtrace import tracer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

ROWS_JS = """
const rows = {};  // by row index: the pinned name and the scrolled cells are apart
document.querySelectorAll('#runs-grid .ag-row').forEach(r => {
  const i = +r.getAttribute('row-index');
  rows[i] = rows[i] || {};
  r.querySelectorAll('.ag-cell[col-id]').forEach(c => { rows[i][c.getAttribute('col-id')] = c; });
});
return Object.keys(rows).sort((a, b) => a - b).map(k => rows[k])
  .filter(r => r.name && r.diverged_at_step)
  .map(r => [r.name.innerText, r.diverged_at_step.innerText,
             r.diverged_at_step.classList.contains('diverged')]);
"""


def record(db: str, name: str, bad_step: int | None, steps: int = 4) -> None:
    """A run whose loss is 0/0 = NaN from ``bad_step`` on (never, for None)."""
    w = Value(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with tracer.record(name, db=db) as run:
            run.watch([w])
            for k in range(steps):
                a = w * (0.0 if bad_step is not None and k >= bad_step else 1.0)
                loss = a / a
                w.grad = 0.0
                loss.backward()
                run.log(loss)


def rows(dash_duo) -> list[list]:
    return dash_duo.driver.execute_script(ROWS_JS)


def wait_rows(dash_duo, want, timeout: float = 20) -> list[list]:
    end, got = time.time() + timeout, None
    while time.time() < end:
        got = rows(dash_duo)
        if got == want:
            return got
        time.sleep(0.2)
    raise AssertionError(f"rows {got!r}, expected {want!r}")


def test_runs_list_flags_diverged_runs_and_sorts_by_step(dash_duo, tmp_path):
    db = str(tmp_path / "runs.db")
    record(db, "late", 3)
    record(db, "fine", None)
    record(db, "early", 1)
    with tracer.connect(db, readonly=True) as store:
        steps = {n: store.run(n).first_nonfinite() for n in ("late", "fine", "early")}
    assert steps["fine"] is None and (steps["late"].step, steps["early"].step) == (3, 1)

    dash_duo.start_server(create_app(db))
    dash_duo.wait_for_contains_text("#runs-grid", "early", timeout=20)
    # Newest first; the diverged cells say at which step, in red.
    wait_rows(
        dash_duo,
        [["early", "at step 1", True], ["fine", "", False], ["late", "at step 3", True]],
    )
    header = dash_duo.find_element("#runs-grid .ag-header-cell[col-id=diverged_at_step]")
    header.find_element("css selector", ".ag-header-cell-label").click()  # ascending
    header.find_element("css selector", ".ag-header-cell-label").click()  # descending
    wait_rows(
        dash_duo,
        [["late", "at step 3", True], ["early", "at step 1", True], ["fine", "", False]],
    )
    assert dash_duo.get_logs() == []
