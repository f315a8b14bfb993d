"""Plotly figures of the dashboard, built from plain arrays (``series``, ``groups``, ``decision``):
the shared frame (template, empty and skeleton figures) and the health and weights
sections' figures here; the curves in ``curvefigures``, one replay step's figures in
``stepfigures``, the compare page's in ``comparefigs``.

    >>> fig = empty("no gradients recorded")     # doctest: +SKIP

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
import plotly.io as pio
from gradtrace.dashboard.series import minmax_picks
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
# The trace types the dashboard draws (tests check the code writes no other): the
# template carries defaults for these only.
TRACE_TYPES = ("scatter", "bar", "heatmap", "contour")
# Of plotly.py's default template, what touches a cartesian chart; the rest (polar,
# ternary, scene, geo, coloraxis, the default colour scales and defaults for some
# twenty trace types) would ship ~6 KB with every figure and be applied by plotly.js at
# every redraw for nothing.
CARTESIAN_LAYOUT = (
    "autotypenumbers",
    "font",
    "colorway",
    "hovermode",
    "hoverlabel",
    "paper_bgcolor",
    "plot_bgcolor",
    "xaxis",
    "yaxis",
    "shapedefaults",
    "annotationdefaults",
    "title",
)
# Trace defaults that draw nothing here: fill and bar patterns (no trace sets a
# pattern shape), error bars (none drawn), and the colour scale (every heatmap names
# its own; a contour draws its line only).
UNUSED_TRACE_KEYS = ("fillpattern", "pattern", "error_x", "error_y", "colorscale")


def _prune(value: Any) -> Any:
    """``value`` without the keys in ``UNUSED_TRACE_KEYS``, at any depth."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if k not in UNUSED_TRACE_KEYS}
    return value


@lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    """Plotly's default template cut to what our charts use, with ``TEMPLATE`` over it
    (as ``update_layout(template=TEMPLATE)`` merges them): the look stays, the
    figure sheds ~6 KB. Made once: every cached grid holds it, and figures are
    deep copies of those (``frame``, ``subplots``), so nothing writes to it.

    >>> sorted(_template()["data"])
    ['bar', 'contour', 'heatmap']
    """
    base = pio.templates["plotly"].to_plotly_json()
    data = {t: [_prune(d) for d in base["data"].get(t, [])] for t in TRACE_TYPES}
    template = go.layout.Template(
        layout={k: base["layout"][k] for k in CARTESIAN_LAYOUT if k in base["layout"]},
        # a default left empty (scatter's was a fill pattern only) is not sent
        data={t: v for t, v in data.items() if any(d.keys() - {"type"} for d in v)},
    )
    template.update(TEMPLATE)  # ours over Plotly's, key by key (a deep merge)
    return template.to_plotly_json()


# Diverging scales with a white middle (Plotly.js's own "RdBu" is grey there).
NEG_POS = [[0.0, "#b91c1c"], [0.5, "#f8fafc"], [1.0, "#1d4ed8"]]
MARGIN = {"l": 56, "r": 16, "t": 36, "b": 40}
BIG = 2000  # points above which a line is thinned to the points that draw it


MARKER_COLOR = "#f59e0b"  # the replay step's line


def marker(step: int | None, xref: str = "x") -> list[dict]:
    """The replay step as a vertical line, named "step": the browser moves every
    shape of that name when the slider moves (assets/run.js)."""
    if step is None:
        return []
    return [
        {
            "name": "step",
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


def with_marker(fig: Figure, step: int | None) -> Figure:
    """A copy of ``fig`` (a chart indexed by step) with the replay step's line; the
    traces are shared, not copied (a cached figure stays as it was)."""
    layout = fig["layout"]
    if not isinstance(layout, dict) or layout.get("meta") in ("empty", "skeleton"):
        return fig
    shapes = [s for s in layout.get("shapes") or [] if s.get("name") != "step"]
    return {**fig, "layout": {**layout, "shapes": [*shapes, *marker(step)]}}


def plotly_text(text: Any) -> str:
    """User text for Plotly titles, legends and hover labels: Plotly reads a few
    HTML tags in strings, so ``<``, ``>`` and ``&`` become entities it shows literally."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def finite_list(values: np.ndarray | Sequence[float]) -> list[float | None]:
    """A list for JSON; NaN and inf become None (gaps in the line)."""
    return [v if isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


def scatter(n: int, **kw: Any) -> dict[str, Any]:
    """A line trace as a plain dict, always SVG: the page's plotly.js is the cartesian
    bundle (``assets/vendor``), which has no WebGL traces. A line of more than ``BIG``
    points keeps only those that draw it at a plot's width (each bucket's first,
    smallest, largest and first non-finite point: ``minmax_picks``), so a spike or a
    gap survives: ``scatter(3, x=[0, 1, 2], y=[1.0, None, 3.0], mode="lines")``."""
    y = kw.get("y")
    if n > BIG and y is not None and len(y) == n:
        values = np.array([np.nan if v is None else v for v in y], dtype=np.float64)
        picks = minmax_picks(values, BIG // 2).tolist()
        for key in ("x", "y", "customdata", "text"):
            if isinstance(kw.get(key), list | tuple) and len(kw[key]) == n:
                kw[key] = [kw[key][i] for i in picks]
    return {"type": "scatter", **kw}


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
    fig.update_layout(margin=MARGIN)
    out = fig.to_plotly_json()
    out["layout"]["template"] = _template()
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


def decade_ticks(lo: float, hi: float, most: int = 7) -> list[int]:
    """Powers of ten (as exponents) to label a log colour scale from ``lo`` to ``hi``:
    every decade, or every 2nd, 5th, 10th, 20th, ... so at most ``most`` labels fit (a
    diverged run's gradients span hundreds of decades).

    >>> decade_ticks(-3.2, 0.5)
    [-3, -2, -1, 0]
    >>> decade_ticks(-5, 300)
    [0, 50, 100, 150, 200, 250, 300]
    """
    first, last = int(np.ceil(lo)), int(np.floor(hi))
    if last < first:  # inside one decade
        return [int(np.round(lo))]
    every = next(
        m * 10**k for k in range(6) for m in (1, 2, 5) if (last - first) // (m * 10**k) + 1 <= most
    )
    return list(range(-(-first // every) * every, last + 1, every))


def heatmap_figure(mags: np.ndarray, steps: Sequence[int], labels: Sequence[str]) -> Figure:
    """Neurons x sampled steps of summed |gradient|, on a log colour scale (a dead
    neuron is a blank row, not a faint one); a click on a row picks its weights."""
    if mags.size == 0:
        return empty("no parameter gradients recorded")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.where(np.isfinite(mags) & (mags > 0), mags, np.nan))
    finite = logs[np.isfinite(logs)]
    lo, hi = (float(np.quantile(finite, 0.01)), float(finite.max())) if finite.size else (-3, 0)
    ticks = decade_ticks(lo, hi)
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
