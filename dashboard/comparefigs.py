"""The compare page's figures: every metric as a small multiple, the runs overlaid.

    >>> lo, hi = robust_range([np.array([1.0, 0.5, 0.2]), np.array([1.0, 1e231])])
    >>> hi < 2
    True

One diverged run must not flatten the others: the y range of a panel comes from
the runs that stay on the common scale, and a run far off it (its typical values
more than ``OFF_SCALE`` spans beyond the others') is clipped at the panel's edge
and marked there with a triangle saying at which step and value it leaves.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.dashboard import figures
from gradtrace.dashboard.figures import COLORWAY, plotly_text
from gradtrace.dashboard.series import ema

OFF_SCALE = 20.0  # spans of the common range beyond which a run is off the scale
PAD = 0.05  # of the range, above and below
PANEL_HEIGHT = 260


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


def run_colours(ids: Sequence[str], by_age: Sequence[str] = ()) -> dict[str, str]:
    """Each run's line colour, the same on every page that shows it (the runs list's
    overlay, the compare page), whatever the order or company it is shown in.

    A run's colour follows from its place in ``by_age`` (every run id, oldest first:
    runs recorded one after another, the ones usually compared, differ), or from
    its id when it is not there. When two of ``ids`` ask for one colour, the older
    keeps it and the other takes the next free one.

    >>> run_colours(["b", "a"], by_age=["a", "b"]) == {"a": COLORWAY[0], "b": COLORWAY[1]}
    True
    """
    n = len(COLORWAY)
    age = {rid: i for i, rid in enumerate(by_age)}
    unknown = len(age)
    wanted = {rid: age.get(rid, unknown + zlib.crc32(rid.encode())) for rid in set(ids)}
    out: dict[str, str] = {}
    taken: set[int] = set()
    for rid in sorted(wanted, key=lambda r: (wanted[r], r)):
        k = wanted[rid] % n
        while k in taken and len(taken) < n:  # more runs than colours: they repeat
            k = (k + 1) % n
        taken.add(k)
        out[rid] = COLORWAY[k]
    return out


def metric_order(runs: Sequence[tuple[Any, pd.DataFrame]]) -> list[str]:
    """The metrics of all runs, loss first (the question a comparison asks first),
    then the others in the order the runs logged them."""
    names: list[str] = []
    for _, m in runs:
        names += [c for c in m.columns if c != "wall_time" and c not in names]
    return sorted(names, key=lambda n: n != "loss")


def compare_figures(
    runs: list[tuple[str, pd.DataFrame, str]], smoothing: float = 0.0, logy: bool = False
) -> list[tuple[str, figures.Figure]]:
    """One figure per metric (loss first), one line per run: ``[(metric, figure)]``.

    ``runs`` holds ``(label, metrics frame, colour)``, the frame as
    ``RunView.metrics()`` returns it. Each metric is its own chart, so its title sits
    over its own axes and the charts stack on a narrow screen; the page shows one
    legend for all of them.
    """
    out = []
    for name in metric_order([(label, m) for label, m, _ in runs]):
        fig = figures.frame(
            height=PANEL_HEIGHT,
            title={"text": plotly_text(name), "x": 0.01, "xanchor": "left", "y": 0.97},
            hovermode="closest",
            showlegend=False,
            margin={"l": 56, "r": 12, "t": 34, "b": 40},
            xaxis={"title": {"text": "step"}},
        )
        series = []
        for label, m, colour in runs:
            if name not in m:
                continue
            steps = m.index.to_numpy(dtype=np.int64)
            values = m[name].to_numpy(dtype=np.float64)
            shown = ema(values, smoothing) if smoothing else values
            series.append((label, colour, steps, values, shown))
        rng = robust_range([s[3] for s in series], logy)
        for label, colour, steps, _, shown in series:
            fig["data"].append(
                figures.scatter(
                    len(steps),
                    x=steps.tolist(),
                    y=figures.finite_list(shown),
                    mode="lines",
                    name=plotly_text(label),
                    line={"color": colour, "width": 1.5},
                )
            )
            off = None if rng is None else first_off(steps, shown, rng, logy)
            if off is not None:
                fig["data"].append(_off_mark(label, colour, off, rng, logy))
        y_layout: dict[str, Any] = {"type": "log" if logy else "linear"}
        if rng is not None:
            y_layout.update(range=list(rng), autorange=False)
        fig["layout"]["yaxis"] = {**fig["layout"].get("yaxis", {}), **y_layout}
        out.append((name, fig))
    return out


def _off_mark(label: str, colour: str, off: tuple, rng: tuple[float, float], logy: bool) -> dict:
    """A triangle at the panel's edge where a run leaves the scale."""
    step, value, edge = off
    return {
        "type": "scatter",
        "x": [step],
        "y": [10**edge if logy else edge],
        "mode": "markers",
        "marker": {
            "symbol": "triangle-up" if edge == rng[1] else "triangle-down",
            "size": 11,
            "color": colour,
        },
        "name": plotly_text(f"{label}: off scale"),
        "hovertext": plotly_text(f"{label} leaves the scale at step {step} ({value:.3g}); clipped"),
        "hoverinfo": "text",
    }
