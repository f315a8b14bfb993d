"""The compare page's tables: final and best values per run, and the settings that
differ, logged schedules (lr) included with the step where they first part.

    >>> [str(c.children) for c in exact(0.1, 0.1 + 2**-56)]      # doctest: +SKIP
    ['0.1', ' vs ', '0.10000000000000002']

Numbers read at 6 significant digits (``display.number``), the full value on hover;
two values that differ are shown with as many digits as it takes to see that.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html
from gradtrace.dashboard.context import RunCache
from gradtrace.dashboard.ui import badge, message
from gradtrace.tracer.display import duration, number
from gradtrace.tracer.report import SETTINGS, metric_series, metric_sides, settings_of

# Logged every step, so not in the config: compared step by step.
SCHEDULES = ("lr",)


def num(x: Any, digits: int = 6) -> html.Span | str:
    """A number at ``digits`` significant digits, its exact value on hover."""
    if x is None or isinstance(x, bool) or not isinstance(x, int | float | np.number):
        return number(x)
    return html.Span(number(x, digits), title=repr(float(x)), className="num")


def exact(a: float, b: float) -> list[Any]:
    """``a vs b`` with enough digits (6 or more) to show that they differ."""
    digits = 6
    while digits < 17 and number(a, digits) == number(b, digits):
        digits += 1
    return [num(a, digits), " vs ", num(b, digits)]


def label(rc: RunCache) -> str:
    return f"{rc.view.name} ({rc.id[:8]})"


def swatch(colour: str) -> html.Span:
    return html.Span(className="swatch", style={"background": colour})


def status_cell(status: str, diverged: Any) -> html.Span:
    """The run's status badge; a diverged run's says so, in red."""
    if diverged is None or pd.isna(diverged):
        return badge(status)
    return html.Span(f"diverged at step {int(diverged)}", className="badge status-diverged")


def summary_table(
    found: list[RunCache], colours: dict[str, str], diverged: dict[str, Any]
) -> html.Table:
    """Per run: status, steps, duration, then each metric's final and best (at step)."""
    frames = [metric_series(rc.view) for rc in found]
    names: list[str] = []
    for m in frames:
        names += [c for c in m if c not in names]
    names.sort(key=lambda n: n != "loss")
    head = ["run", "status", "steps", "duration"]
    for n in names:
        head += [f"{n} final", f"{n} best"]
    rows = []
    for rc, m in zip(found, frames, strict=True):
        s = rc.summary()
        cells: list[Any] = [
            [swatch(colours[rc.id]), dcc.Link(label(rc), href=f"/run/{rc.id}")],
            status_cell(s["status"], diverged.get(rc.id)),
            str(s["steps"]),
            duration(s["duration_s"]),
        ]
        sides = {side.name: side for side in metric_sides(m, m, 0.0, 0.0)}
        for n in names:
            side = sides.get(n)
            if side is None:
                cells += ["-", "-"]
                continue
            final = m[n].iloc[-1] if len(m[n]) else None  # NaN included: a NaN run ends NaN
            best = "-" if side.best_a is None else [num(side.best_a), f" @ {side.best_step_a}"]
            cells += [num(final), best]
        rows.append(html.Tr([html.Td(c) for c in cells]))
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
        id="compare-summary",
        className="table",
    )


def schedule(rc: RunCache, name: str) -> pd.Series | None:
    """A schedule by step: the logged metric, or for ``lr`` the optimizer's rate as
    the recorder stored it with each update (read for one parameter)."""
    m = rc.metrics()
    if name in m:
        return m[name].dropna()
    if name != "lr" or not len(rc.view.parameters()):
        return None
    u = rc.view.updates(params=[0])
    s = pd.Series(u["lr"].to_numpy(dtype=np.float64), index=u["step"].to_numpy(dtype=np.int64))
    s = s.dropna()
    return s if len(s) else None


def first_apart(series: list[pd.Series]) -> int | None:
    """The first step all the series logged where their values are not all the
    same bits; None when they agree on every common step."""
    common = series[0].index
    for s in series[1:]:
        common = common.intersection(s.index)
    if not len(common):
        return None
    common = common.sort_values()

    def bits(s: pd.Series) -> np.ndarray:  # NaN equals NaN, -0.0 differs from 0.0
        return s.reindex(common).to_numpy(dtype=np.float64).view(np.uint64)

    ref = bits(series[0])
    apart = np.zeros(len(common), dtype=bool)
    for s in series[1:]:
        apart |= bits(s) != ref
    hits = np.flatnonzero(apart)
    return int(common[hits[0]]) if hits.size else None


def schedule_rows(found: list[RunCache]) -> list[html.Tr]:
    """A row per schedule that differs: each run's value where they first part."""
    rows = []
    for name in SCHEDULES:
        series = [schedule(rc, name) for rc in found]
        if any(s is None for s in series):
            continue
        step = first_apart(series)
        if step is None:
            continue
        key = html.Td([f"{name} (schedule)", html.Div(f"first differs at step {step}")])
        cells = [html.Td([num(s.loc[step]), f" at step {step}"]) for s in series]
        rows.append(html.Tr([key, *cells], className="schedule-row"))
    return rows


def settings_table(found: list[RunCache]) -> Any:
    """The settings (config, seed, model, optimizer, capture, status, versions) and
    schedules that are not the same in every run."""
    per_run = [dict(settings_of(rc.view, SETTINGS)) for rc in found]
    keys: list[str] = []
    for s in per_run:
        keys += [k for k in s if k not in keys]
    differ = [k for k in keys if len({_key(s.get(k)) for s in per_run}) > 1]
    body = [html.Tr([html.Td(k)] + [html.Td(_show(s.get(k))) for s in per_run]) for k in differ]
    body += schedule_rows(found)
    if not body:
        return message(
            "Every setting is the same: config, seed, model, optimizer, capture, lr schedule."
        )
    head = html.Tr([html.Th("setting")] + [html.Th(label(rc)) for rc in found])
    return html.Table([html.Thead(head), html.Tbody(body)], id="compare-diff", className="table")


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _show(v: Any) -> Any:
    if v is None:
        return "-"
    if isinstance(v, float):
        return num(v)
    return json.dumps(v, default=str) if isinstance(v, dict | list) else str(v)
