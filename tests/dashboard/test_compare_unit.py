"""The compare page's and the runs list's pieces without a browser: the robust y
range, the off-scale marks, colours, schedules, the divergence links, grid rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from gradtrace.dashboard.comparefigs import compare_figures, first_off, robust_range, run_colours
from gradtrace.dashboard.comparetables import first_apart
from gradtrace.dashboard.pages.compare import divergence, node_href
from gradtrace.dashboard.pages.runs import columns_for, grid_rows
from helpers.compare import record_run

from gradtrace import tracer


def test_a_diverged_run_does_not_set_the_range():
    steady = np.linspace(1.0, 0.2, 50)
    other = np.linspace(0.9, 0.3, 50)
    boom = np.r_[np.linspace(1.0, 5.0, 10), np.logspace(2, 231, 30), [np.inf] + [np.nan] * 9]
    lo, hi = robust_range([steady, other, boom])
    assert lo <= 0.2 and 1.0 <= hi < 1.1  # the steady runs fill the panel
    assert robust_range([steady, other]) == (lo, hi)  # as if the diverged run were absent
    steps = np.arange(50)
    step, value, edge = first_off(steps, boom, (lo, hi), logy=False)
    assert (step, edge) == (int(np.argmax(boom > hi)), hi) and value == boom[step]
    llo, lhi = robust_range([steady, other, boom], logy=True)  # log10 units
    assert llo <= np.log10(0.2) and lhi < 0.1


def test_two_runs_on_one_scale_are_both_shown_whole():
    small, large = np.linspace(0.1, 0.5, 20), np.linspace(2.0, 6.0, 20)
    lo, hi = robust_range([small, large])
    assert lo <= 0.1 and hi >= 6.0


def test_figures_put_loss_first_and_mark_the_clipped_run():
    m = pd.DataFrame({"acc": [0.5, 0.6, 0.7], "loss": [1.0, 0.5, 0.2], "wall_time": [0, 1, 2]})
    boom = m.copy()
    boom["loss"] = [1.0, 1e100, 1e231]
    figs = compare_figures([("a", m, "#000001"), ("b <i>", boom, "#000002")])
    assert [name for name, _ in figs] == ["loss", "acc"]  # loss first, whatever the order
    loss = figs[0][1]
    assert loss["layout"]["title"]["text"] == "loss"  # its own title, over its own axes
    assert loss["layout"]["yaxis"]["range"][1] < 2
    lines = [t for t in loss["data"] if t["mode"] == "lines"]
    assert [t["line"]["color"] for t in lines] == ["#000001", "#000002"]
    marks = [t for t in loss["data"] if t["mode"] == "markers"]
    assert len(marks) == 1 and marks[0]["x"] == [1] and marks[0]["marker"]["color"] == "#000002"
    assert "b &lt;i&gt;" in marks[0]["hovertext"]  # user text escaped for Plotly
    assert compare_figures([("a", m[["wall_time"]], "#000001")]) == []


def test_run_colours_follow_the_runs_not_their_order():
    ids = [f"{i:032x}" for i in range(0, 12 * 7919, 7919)]
    colours = run_colours(ids)
    assert colours == run_colours(ids[::-1])
    assert len(set(run_colours(ids[:10]).values())) == 10  # up to ten runs: all different
    assert run_colours(ids[:3]) == run_colours(list(reversed(ids[:3])))
    # By age: a run keeps its colour whichever runs it is shown with.
    alone = {rid: run_colours([rid], by_age=ids)[rid] for rid in ids[:10]}
    assert run_colours(ids[:10], by_age=ids) == alone
    assert run_colours(ids[2:5], by_age=ids) == {rid: alone[rid] for rid in ids[2:5]}


def test_divergence_links_point_at_the_step_and_node(tmp_path):
    db = str(tmp_path / "runs.db")
    a = record_run(db, "a", steps=14)
    b = record_run(db, "b", steps=14, lr_from=(10, 0.2))
    with tracer.connect(db, readonly=True) as store:
        d = store.diff(a, b)
    hrefs = [
        c.href
        for p in divergence(d)
        for c in (p.children if isinstance(p.children, list) else [])
        if hasattr(c, "href")
    ]
    node = d.node_value.node
    assert node_href(a, 11, node) == f"/run/{a}?step=11&node={node}"
    assert f"/run/{a}?step=11&node={node}" in hrefs and f"/run/{b}?step=11&node={node}" in hrefs


def test_schedules_part_at_the_first_step_whose_bits_differ():
    a = pd.Series([1.0, 0.9, np.nan, 0.7], index=[0, 1, 2, 3])
    assert first_apart([a, a.copy()]) is None  # NaN equals NaN bit for bit
    b = a.copy()
    b[3] = np.nextafter(0.7, 1.0)  # one ulp
    assert first_apart([a, b]) == 3
    assert first_apart([a, b.drop(3)]) is None  # only common steps count
    assert first_apart([a, a, pd.Series([1.2], index=[0])]) == 0


def test_runs_grid_types_each_config_column_and_shows_nan():
    runs = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "diverged_at_step": pd.array([None, 4, None], dtype="Int64"),
            "metric.loss": [0.5, np.nan, np.nan],
            "config.width": [16, "wide", np.nan],  # text in one run: text in all
            "config.lr": [0.1, 0.2, np.nan],
        }
    )
    cols, text = columns_for(runs)
    by_field = {c["field"]: c for c in cols}
    assert text == ["config.width"] and by_field["config.width"]["cellDataType"] == "text"
    assert by_field["config.lr"]["cellDataType"] == "number"
    rows = grid_rows(runs, text)
    assert [r["config.width"] for r in rows] == ["16", "wide", None]
    assert [r["config.lr"] for r in rows] == [0.1, 0.2, None]
    # A diverged run's NaN loss is NaN; a run that never logged one has none.
    assert [r["metric.loss"] for r in rows] == [0.5, "NaN", None]
