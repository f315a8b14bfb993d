"""The compare page's figure: every metric as a small multiple, the runs overlaid.

    >>> lo, hi = robust_range([np.array([1.0, 0.5, 0.2]), np.array([1.0, 1e231])])
    >>> hi < 2
    True

One diverged run must not flatten the others: the y range of a panel comes from
the runs that stay on the common scale, and a run far off it (its typical values
more than ``OFF_SCALE`` spans beyond the others') is clipped at the panel's edge
and marked there with a triangle saying at which step and value it leaves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.dashboard import figures
from gradtrace.dashboard.figures import plotly_text
from gradtrace.dashboard.series import ema

OFF_SCALE = 20.0  # spans of the common range beyond which a run is off the scale
PAD = 0.05  # of the range, above and below
COLS = 2
PANEL_HEIGHT = 240


def _finite(v: np.ndarray, logy: bool) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    if logy:
        v = v[v > 0]
        return np.log10(v)
    return v


def robust_range(series: Sequence[np.ndarray], logy: bool = False) -> tuple[float, float] | None:
    """A y range (in log10 units when ``logy``) that shows every run on the common scale.

    Each run's typical band is its 5th to 95th percentile. The reference is the
    narrowest band (a diverged run's is the widest); a run is on the scale when its
    band stays within ``OFF_SCALE`` reference spans of it, the span being at least a
    tenth of the reference's magnitude. The range covers the on-scale runs whole.
    """
    finite = [f for f in (_finite(s, logy) for s in series) if f.size]
    if not finite:
        return None
    bands = np.array([np.percentile(f, [5, 95]) for f in finite])
    ref_lo, ref_hi = bands[int(np.argmin(bands[:, 1] - bands[:, 0]))]
    span = max(ref_hi - ref_lo, 0.1 * max(abs(ref_lo), abs(ref_hi)), 1e-12)
    keep = (bands[:, 1] <= ref_hi + OFF_SCALE * span) & (bands[:, 0] >= ref_lo - OFF_SCALE * span)
    values = np.concatenate([f for f, k in zip(finite, keep, strict=True) if k])
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * PAD or max(abs(hi) * PAD, 1e-12)
    return lo - pad, hi + pad


def first_off(steps: np.ndarray, values: np.ndarray, rng: tuple[float, float], logy: bool):
    """(step, value, edge) where the series first leaves ``rng``, or None."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log10(np.where(v > 0, v, np.nan)) if logy else v
    out = np.flatnonzero(np.isfinite(y) & ((y > rng[1]) | (y < rng[0])))
    if not out.size:
        return None
    i = int(out[0])
    return int(steps[i]), float(v[i]), (rng[1] if y[i] > rng[1] else rng[0])


def _axis(i: int, kind: str) -> str:
    return f"{kind}axis" if i == 1 else f"{kind}axis{i}"


def compare_figure(
    runs: list[tuple[str, pd.DataFrame]], smoothing: float = 0.0, logy: bool = False
) -> figures.Figure:
    """Small multiples: one panel per metric (union over runs), one line per run.

    ``runs`` holds ``(label, metrics frame)`` pairs, as ``RunView.metrics()`` returns.
    """
    names: list[str] = []
    for _, m in runs:
        names += [c for c in m.columns if c != "wall_time" and c not in names]
    if not names:
        return figures.empty("These runs logged no metrics.")
    rows = math.ceil(len(names) / COLS)
    cols = min(COLS, len(names))
    fig = figures.subplots(
        rows,
        cols,
        [plotly_text(n) for n in names],
        height=PANEL_HEIGHT * rows + 60,
        hovermode="closest",
        # Beside the panels, never over an axis title.
        legend={"x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
        margin={"l": 64, "r": 200, "t": 40, "b": 48},
    )
    for p, name in enumerate(names, start=1):
        xa, ya = _axis(p, "x"), _axis(p, "y")
        xref, yref = xa.replace("axis", ""), ya.replace("axis", "")
        series = []
        for r, (label, m) in enumerate(runs):
            if name not in m:
                continue
            steps = m.index.to_numpy(dtype=np.int64)
            values = m[name].to_numpy(dtype=np.float64)
            shown = ema(values, smoothing) if smoothing else values
            series.append((r, label, steps, values, shown))
        rng = robust_range([s[3] for s in series], logy)
        for r, label, steps, _, shown in series:
            color = figures.COLORWAY[r % len(figures.COLORWAY)]
            fig["data"].append(
                figures.scatter(
                    len(steps),
                    x=steps.tolist(),
                    y=figures.finite_list(shown),
                    mode="lines",
                    name=plotly_text(label),
                    legendgroup=f"run{r}",
                    showlegend=p == 1,
                    line={"color": color, "width": 1.5},
                    xaxis=xref,
                    yaxis=yref,
                )
            )
            off = None if rng is None else first_off(steps, shown, rng, logy)
            if off is not None:
                step, value, edge = off
                fig["data"].append(
                    {
                        "type": "scatter",
                        "x": [step],
                        "y": [10**edge if logy else edge],
                        "mode": "markers",
                        "marker": {
                            "symbol": "triangle-up" if edge == rng[1] else "triangle-down",
                            "size": 11,
                            "color": color,
                        },
                        "name": plotly_text(f"{label}: off scale"),
                        "legendgroup": f"run{r}",
                        "showlegend": False,
                        "hovertext": plotly_text(
                            f"{label} leaves the scale at step {step} ({value:.3g}); clipped"
                        ),
                        "hoverinfo": "text",
                        "xaxis": xref,
                        "yaxis": yref,
                    }
                )
        y_layout: dict[str, Any] = {"type": "log" if logy else "linear"}
        if rng is not None:
            y_layout.update(range=list(rng), autorange=False)
        fig["layout"][ya] = {**fig["layout"].get(ya, {}), **y_layout}
        if p > len(names) - cols:  # the bottom row carries the x title
            fig["layout"][xa] = {**fig["layout"].get(xa, {}), "title": {"text": "step"}}
    return fig
