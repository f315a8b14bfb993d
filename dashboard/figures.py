"""Plotly figures of the dashboard, built from plain arrays (see ``dashboard.data``).

Figures are plain dicts: traces are written as dicts because Plotly's validation
of long lists costs more than the read behind them, and only the (small) layout
goes through ``plotly.graph_objects`` for subplot geometry. Series are Python
lists, not numpy arrays: Plotly would encode arrays as base64 blobs, which
``Patch().extend`` (how a live run grows) cannot append to. Every user-provided
string passes through ``plotly_text`` first.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import lru_cache
from math import isfinite
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from gradtrace.dashboard.data import ema, minmax_picks, plotly_text, window
from plotly.subplots import make_subplots

Figure = dict[str, Any]
COLORWAY = [
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#9333ea",
    "#ea580c",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
]
TEMPLATE = {
    "layout": {
        "font": {"family": "Inter, system-ui, sans-serif", "size": 12, "color": "#1f2933"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": COLORWAY,
        "xaxis": {"gridcolor": "#eef0f3", "zerolinecolor": "#d5d9e0"},
        "yaxis": {"gridcolor": "#eef0f3", "zerolinecolor": "#d5d9e0"},
        "hovermode": "x unified",
    }
}
# Diverging scales with a white middle (Plotly.js's own "RdBu" is grey there).
NEG_POS = [[0.0, "#b91c1c"], [0.5, "#f8fafc"], [1.0, "#1d4ed8"]]
MARGIN = {"l": 56, "r": 16, "t": 36, "b": 40}
BIG = 2000  # points above which a line is drawn with WebGL


def finite_list(values: np.ndarray | Sequence[float]) -> list[float | None]:
    """A list for JSON; NaN and inf become None (gaps in the line)."""
    return [v if isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


def scatter(n: int, **kw: Any) -> dict[str, Any]:
    """A line trace as a plain dict; WebGL above ``BIG`` points."""
    return {"type": "scattergl" if n > BIG else "scatter", **kw}


@lru_cache(maxsize=64)
def _grid(rows: int, cols: int, titles: tuple[str, ...], shared_x: bool) -> Figure:
    """An empty figure with the template and, for several panels, subplot geometry:
    made by Plotly once per shape (validation costs ~25 ms), then copied."""
    if (rows, cols) == (1, 1) and not titles:
        fig = go.Figure()
    else:
        spacing = {"vertical_spacing": 0.07} if rows > 1 else {"horizontal_spacing": 0.08}
        fig = make_subplots(
            rows=rows, cols=cols, shared_xaxes=shared_x, subplot_titles=list(titles), **spacing
        )
    fig.update_layout(template=TEMPLATE, margin=MARGIN)
    out = fig.to_plotly_json()
    out["data"] = []
    return out


def _merge(fig: Figure, layout: dict[str, Any]) -> Figure:
    """Set layout keys (Plotly.js JSON, not validated); dicts merge one level deep."""
    target = fig["layout"]
    for key, value in layout.items():
        if key == "title" and isinstance(value, str):
            value = {"text": value}
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        else:
            target[key] = value
    return fig


def frame(**layout: Any) -> Figure:
    """A one-panel figure with ``layout`` and no traces yet."""
    return _merge(copy.deepcopy(_grid(1, 1, (), False)), layout)


def subplots(
    rows: int, cols: int, titles: Sequence[str], shared_x: bool = False, **layout: Any
) -> Figure:
    """An empty subplot grid with ``layout`` merged in."""
    return _merge(copy.deepcopy(_grid(rows, cols, tuple(titles), shared_x)), layout)


def empty(message: str, height: int = 260) -> Figure:
    """A blank figure that says why it is blank."""
    return frame(
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": plotly_text(message),
                "showarrow": False,
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "font": {"size": 13, "color": "#6b7280"},
            }
        ],
    )


SKELETON = "#eceff3"  # the grey of a chart still loading (style.css .skeleton)


def skeleton(height: int = 260) -> dict[str, Any]:
    """What a chart shows until its callback fills it: a grey block of its final
    height, not Plotly's default axes (a plain dict: nothing to validate)."""
    hidden = {"visible": False}
    return {
        "data": [],
        "layout": {
            "height": height,
            "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
            "paper_bgcolor": SKELETON,
            "plot_bgcolor": SKELETON,
            "xaxis": hidden,
            "yaxis": hidden,
            "meta": "skeleton",
        },
    }


MARKER_COLOR = "#f59e0b"  # the replay step's line (the browser finds it by colour)


def marker(step: int | None, xref: str = "x") -> list[dict]:
    """The replay step as a vertical line."""
    if step is None:
        return []
    return [
        {
            "type": "line",
            "xref": xref,
            "yref": "paper",
            "x0": step,
            "x1": step,
            "y0": 0,
            "y1": 1,
            "line": {"color": MARKER_COLOR, "width": 2},
        }
    ]


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
        return empty("no other metrics logged", height=220)
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
    return fig


def history_figure(updates: pd.DataFrame) -> Figure:
    """Each picked weight's value, gradient and update per step (three rows)."""
    if updates.empty:
        return empty("pick a weight to see its value, gradient and update per step")
    fig = subplots(
        3,
        1,
        ["value (before the step's update)", "gradient", "update (value after - value before)"],
        shared_x=True,
        height=520,
        legend={"orientation": "h", "y": -0.1},
    )
    fig["layout"]["xaxis3"]["title"] = {"text": "step"}
    for k, (name, g) in enumerate(updates.groupby("name", sort=False)):
        x = g["step"].astype(int).tolist()
        before = g["value_before"].to_numpy()
        delta = g["value_after"].to_numpy() - before
        color = COLORWAY[k % len(COLORWAY)]
        for row, y in ((1, before), (2, g["grad"].to_numpy()), (3, delta)):
            axis = "" if row == 1 else str(row)
            fig["data"].append(
                scatter(
                    len(x),
                    x=x,
                    y=finite_list(y),
                    mode="lines",
                    name=plotly_text(name),
                    legendgroup=name,
                    showlegend=row == 1,
                    line={"color": color, "width": 1.5},
                    xaxis=f"x{axis}",
                    yaxis=f"y{axis}",
                )
            )
    return fig


def heatmap_figure(mags: np.ndarray, steps: Sequence[int], labels: Sequence[str]) -> Figure:
    """Neurons x sampled steps of summed |gradient|, on a log colour scale (a dead
    neuron is a blank row, not a faint one); a click on a row picks its weights."""
    if mags.size == 0:
        return empty("no parameter gradients recorded")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.where(np.isfinite(mags) & (mags > 0), mags, np.nan))
    finite = logs[np.isfinite(logs)]
    lo, hi = (float(np.quantile(finite, 0.01)), float(finite.max())) if finite.size else (-3, 0)
    ticks = list(range(int(np.floor(lo)), int(np.ceil(hi)) + 1))
    fig = frame(
        height=520,  # the size its placeholder holds, so nothing below it jumps
        margin={**MARGIN, "l": 70},
        hovermode="closest",
        title="|gradient| per neuron, summed over its weights (blank: 0; click a row)",
        xaxis={"title": {"text": "step"}},
        yaxis={"autorange": "reversed", "tickfont": {"size": 10}, "dtick": 1},
    )
    fig["data"] = [
        {
            "type": "heatmap",
            "z": [finite_list(r) for r in logs],
            "customdata": [finite_list(r) for r in mags],
            "x": [int(s) for s in steps],
            "y": [plotly_text(n) for n in labels],
            "colorscale": "Viridis",
            "zmin": lo,
            "zmax": hi,
            "colorbar": {
                "title": {"text": "|grad|"},
                "thickness": 12,
                "tickvals": ticks,
                "ticktext": [f"1e{t}" for t in ticks],
            },
            "hovertemplate": "%{y}<br>step %{x}<br>|grad| %{customdata:.3g}<extra></extra>",
            "ygap": 1,
        }
    ]
    return fig


def layer_lines(
    title: str,
    series: dict[str, tuple[Sequence[int], np.ndarray]],
    y_title: str,
    log: bool = False,
    guide: float | None = None,
    height: int = 260,
) -> Figure:
    """One line per layer (``name -> (steps, values)``), optionally on a log axis
    with a dotted guide line at ``guide``."""
    if not series:
        return empty(f"{title}: nothing recorded to compute it from", height=height)
    fig = frame(
        height=height,
        title=plotly_text(title),
        xaxis={"title": {"text": "step"}},
        yaxis={"type": "log" if log else "linear", "title": {"text": y_title}},
        legend={"orientation": "h", "y": -0.25},
    )
    if guide is not None:
        fig["layout"]["shapes"] = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": guide,
                "y1": guide,
                "line": {"dash": "dot", "color": "#9ca3af"},
            }
        ]
    for k, (name, (steps, values)) in enumerate(series.items()):
        x = [int(s) for s in steps]
        fig["data"].append(
            scatter(
                len(x),
                x=x,
                y=finite_list(values),
                mode="lines+markers" if len(x) < 60 else "lines",
                name=plotly_text(name),
                line={"color": COLORWAY[k % len(COLORWAY)], "width": 2},
            )
        )
    return fig
