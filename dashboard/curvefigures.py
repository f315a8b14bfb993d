"""Figures of the run page's curves: every metric as a raw line and its EMA,
downsampled to the plot's width (min and max per bucket, so a spike survives), with
markers at the edge for NaN/inf steps and the replay step as a vertical line.

    >>> fig = loss_figure(run.metrics(), smoothing=0.6, logy=False, step=16)  # doctest: +SKIP

Built from plain arrays like every figure of the dashboard (see ``figures``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.dashboard.figures import (
    COLORWAY,
    Figure,
    empty,
    finite_list,
    frame,
    marker,
    plotly_text,
    scatter,
    subplots,
)
from gradtrace.dashboard.series import ema, minmax_picks, window

# Curves: metric i of a figure is drawn by traces PAIR * i (raw) and PAIR * i + 1
# (EMA); the markers of its non-finite steps come after every pair. The live
# growth and the zoom of the run page patch traces by these positions.
PAIR = 2
CURVE_BUCKETS = 700  # columns of a wide plot: min and max of each survive
EDGE_AXIS = 90  # overlay y axes y91, y92, ... hold the non-finite markers at the edge


def curve_pair(
    steps: Sequence[int],
    values: np.ndarray,
    smoothing: float,
    name: str,
    color: str,
    axis: str = "",
    xrange: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """A metric drawn raw (faint when smoothed) and EMA-smoothed (hidden at 0),
    both downsampled to the plot's width inside ``xrange`` (the whole run if None)."""
    s = np.asarray(steps, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    smooth_v = ema(v, smoothing)  # over the whole run: the same line at every zoom
    part = window(s, xrange)
    picks = minmax_picks(v[part], CURVE_BUCKETS) + (part.start or 0)
    x = s[picks].tolist()
    n = len(x)
    refs = {"xaxis": f"x{axis}", "yaxis": f"y{axis}"}
    raw = scatter(
        n,
        x=x,
        y=finite_list(v[picks]),
        name=plotly_text(name),
        mode="lines",
        line={"color": color, "width": 1.5},
        opacity=0.3 if smoothing else 1.0,
        showlegend=False,
        **refs,
    )
    smooth = scatter(
        n,
        x=x,
        y=finite_list(smooth_v[picks]),
        mode="lines",
        name=plotly_text(f"{name} (EMA {smoothing:g})"),
        visible=smoothing > 0,
        line={"color": color, "width": 2},
        showlegend=False,
        hoverinfo="skip",
        **refs,
    )
    return [raw, smooth]


def edge_marks(steps: Sequence[int], values: np.ndarray, panel: int = 1) -> tuple[list, dict]:
    """Markers at the plot's edge for NaN (top, x) and +inf / -inf (top / bottom,
    triangles) steps of panel ``panel``'s metric: ``(traces, layout)`` to merge in.
    Empty when every value is finite."""
    v = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    if not len(bad):
        return [], {}
    s = np.asarray(steps, dtype=np.int64)[bad]
    kind = np.where(np.isnan(v[bad]), "NaN", np.where(v[bad] > 0, "+inf", "-inf"))
    overlay = EDGE_AXIS + panel
    base = "y" if panel == 1 else f"y{panel}"
    layout = {
        f"yaxis{overlay}": {
            "overlaying": base,
            "range": [0, 1],
            "visible": False,
            "fixedrange": True,
        }
    }
    trace = {
        "type": "scatter",
        "mode": "markers",
        "x": s.tolist(),
        "y": [0.0 if k == "-inf" else 1.0 for k in kind.tolist()],
        "text": kind.tolist(),
        "marker": {
            "color": "#dc2626",
            "size": 9,
            "symbol": [
                {"NaN": "x", "+inf": "triangle-up", "-inf": "triangle-down"}[k]
                for k in kind.tolist()
            ],
        },
        "cliponaxis": False,
        "showlegend": False,
        "name": "non-finite",
        "hovertemplate": "step %{x}: %{text}<extra></extra>",
        "xaxis": "x" if panel == 1 else f"x{panel}",
        "yaxis": f"y{overlay}",
    }
    return [trace], layout


def steady_range(values: np.ndarray) -> dict[str, list[float]] | None:
    """The y ranges (``{"linear": [lo, hi], "log": [lo, hi]}``, log in decades) of a
    series with one finite value (a constant learning rate), else None: Plotly pads
    a constant line by a hair, so its axis would read 9.999k, 10k, 10.001k."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v) or v.min() != v.max():
        return None
    c = float(v[0])
    pad = abs(c) / 2 if c else 1.0
    decade = float(np.log10(abs(c))) if c > 0 else 0.0
    return {"linear": [c - pad, c + pad], "log": [decade - 1, decade + 1]}


def steady_axes(metrics: pd.DataFrame, names: list[str]) -> dict[str, dict[str, list[float]]]:
    """``steady_range`` of each panel's axis (``yaxis``, ``yaxis2``, ...) that has one."""
    out = {}
    for i, name in enumerate(names):
        ranges = steady_range(metrics[name].to_numpy())
        if ranges is not None:
            out["yaxis" if i == 0 else f"yaxis{i + 1}"] = ranges
    return out


def _steady(fig: Figure, steady: dict[str, dict[str, list[float]]], logy: bool) -> None:
    """Fix the steady axes' ranges; the ranges of both axis types go in the layout's
    meta, where the log-y switch reads them (assets/run.js, overview._axis_patch)."""
    for axis, ranges in steady.items():
        fig["layout"][axis]["range"] = ranges["log" if logy else "linear"]
    if steady:
        fig["layout"]["meta"] = {"steady": steady}


def loss_figure(
    metrics: pd.DataFrame,
    smoothing: float,
    logy: bool,
    step: int | None,
    xrange: tuple[float, float] | None = None,
) -> Figure:
    """The loss curve: traces 0 and 1 its pair (see ``PAIR``), then its edge marks."""
    if "loss" not in metrics:
        return empty("this run logged no loss")
    fig = frame(
        height=300,
        title="loss",
        shapes=marker(step),
        uirevision="loss",
        xaxis={"title": {"text": "step"}},
        yaxis={"type": "log" if logy else "linear"},
    )
    values = metrics["loss"].to_numpy()
    fig["data"] = curve_pair(metrics.index, values, smoothing, "loss", COLORWAY[0], "", xrange)
    marks, layout = edge_marks(metrics.index, values)
    fig["data"] += marks
    fig["layout"].update(layout)
    _steady(fig, steady_axes(metrics, ["loss"]), logy)
    return fig


def other_metrics(metrics: pd.DataFrame) -> list[str]:
    """The metrics drawn beside the loss."""
    return [c for c in metrics.columns if c != "loss"]


def metric_color(i: int) -> str:
    """The colour of the ``i``-th metric beside the loss."""
    return COLORWAY[1 + i % (len(COLORWAY) - 1)]


def metric_shapes(step: int | None, n: int) -> list[dict]:
    """The replay marker on each of ``n`` side-by-side panels."""
    return [s for i in range(n) for s in marker(step, "x" if i == 0 else f"x{i + 1}")]


def metrics_figure(
    metrics: pd.DataFrame,
    smoothing: float,
    step: int | None,
    logy: bool = False,
    xranges: dict[str, tuple[float, float] | None] | None = None,
) -> Figure:
    """Every other metric (acc, lr, ...) side by side, a pair of traces each."""
    names = other_metrics(metrics)
    if not names:
        return empty("no other metrics logged", height=240)
    fig = subplots(
        1,
        len(names),
        [plotly_text(n) for n in names],
        height=240,
        shapes=metric_shapes(step, len(names)),
        uirevision="metrics",
    )
    edges: list[dict] = []
    for i, name in enumerate(names):
        axis = "" if i == 0 else str(i + 1)
        values = metrics[name].to_numpy()
        xrange = (xranges or {}).get(f"xaxis{axis}")
        fig["data"] += curve_pair(
            metrics.index, values, smoothing, name, metric_color(i), axis, xrange
        )
        fig["layout"][f"yaxis{axis}"]["type"] = "log" if logy else "linear"
        marks, layout = edge_marks(metrics.index, values, i + 1)
        edges += marks
        fig["layout"].update(layout)
    fig["data"] += edges
    _steady(fig, steady_axes(metrics, names), logy)
    return fig
