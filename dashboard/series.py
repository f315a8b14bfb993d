"""Curve series: EMA smoothing, downsampling and the zoomed window of a step axis.

No Dash and no database here: every function takes arrays and is unit tested.

>>> downsample(range(10), 4)
[0, 3, 6, 9]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MAX_COLUMNS = 300


def ema(values: Sequence[float] | np.ndarray, smoothing: float) -> np.ndarray:
    """TensorBoard-style smoothing: an exponential moving average with weight
    ``smoothing`` on the past, bias-corrected so the first point is not pulled to 0.
    NaN/inf points are skipped (the average carries over them)."""
    x = np.asarray(values, dtype=np.float64)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if smoothing == 0.0 or len(x) == 0:
        return x.copy()
    series = pd.Series(np.where(np.isfinite(x), x, np.nan))
    out = series.ewm(alpha=1.0 - smoothing, adjust=True, ignore_na=True).mean()
    out = out.to_numpy(dtype=np.float64, copy=True)
    out[~np.isfinite(x)] = np.nan
    return out


def downsample(steps: Sequence[int] | np.ndarray, limit: int = MAX_COLUMNS) -> list[int]:
    """At most ``limit`` steps spread evenly over ``steps``, first and last included."""
    s = np.asarray(steps, dtype=np.int64)
    if len(s) <= limit:
        return s.tolist()
    picks = np.unique(np.round(np.linspace(0, len(s) - 1, limit)).astype(np.int64))
    return s[picks].tolist()


def minmax_picks(values: Sequence[float] | np.ndarray, buckets: int) -> np.ndarray:
    """Indices of ``values`` that draw the same line at ``buckets`` columns: the
    first and last point, and per bucket its smallest and largest finite value and
    its first non-finite one (a spike or a gap survives any zoom level).

    >>> minmax_picks([0, 5, 1, 1, 1, 1], 2).tolist()
    [0, 1, 3, 5]
    """
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    finite = np.isfinite(y)
    high = np.where(finite, y, -np.inf)
    low = np.where(finite, y, np.inf)
    starts = edges[:-1]
    # reduceat gives each bucket's extreme; argmax of the equality finds where it is
    picks = [np.array([0, n - 1])]
    for values_, reduce in ((high, np.maximum), (low, np.minimum)):
        extreme = reduce.reduceat(values_, starts)
        hit = values_ == np.repeat(extreme, np.diff(edges))
        first = np.maximum.reduceat(np.where(hit, -np.arange(n), -n), starts)
        picks.append(-first[first > -n])
    gaps = np.flatnonzero(~finite)
    if len(gaps):
        bucket = np.searchsorted(edges, gaps, side="right") - 1
        picks.append(gaps[np.r_[True, np.diff(bucket) > 0]])
    return np.unique(np.concatenate(picks))


def zoom_ranges(relayout: dict[str, Any] | None) -> dict[str, tuple[float, float] | None]:
    """The x ranges a Plotly ``relayoutData`` sets, by axis (``"xaxis"``, ``"xaxis2"``):
    a ``(low, high)`` for a zoom, None for "back to the whole run"; axes it does not
    mention are absent.

    >>> zoom_ranges({"xaxis.range[0]": 10, "xaxis.range[1]": 90.5, "xaxis2.autorange": True})
    {'xaxis': (10.0, 90.5), 'xaxis2': None}
    """
    out: dict[str, tuple[float, float] | None] = {}
    for key, value in (relayout or {}).items():
        axis, _, prop = key.partition(".")
        if not axis.startswith("xaxis"):
            continue
        if prop == "autorange":
            out[axis] = None
        elif prop == "range" and isinstance(value, list | tuple) and len(value) == 2:
            out[axis] = (float(value[0]), float(value[1]))
        elif prop == "range[0]" and f"{axis}.range[1]" in relayout:
            out[axis] = (float(value), float(relayout[f"{axis}.range[1]"]))
    return out


def window(steps: np.ndarray, xrange: tuple[float, float] | None) -> slice:
    """The positions of ``steps`` inside ``xrange``, one more on each side so the
    line runs to the plot's edges."""
    if xrange is None:
        return slice(0, len(steps))
    lo = int(np.searchsorted(steps, xrange[0], side="left"))
    hi = int(np.searchsorted(steps, xrange[1], side="right"))
    return slice(max(lo - 1, 0), min(hi + 1, len(steps)))
