"""Pure helpers that turn query-API DataFrames into what the figures draw.

No Dash and no database here: every function takes arrays or DataFrames and is
unit tested on its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.engine import MLP, OP_TABLE
from gradtrace.tracer.display import duration

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


def layer_groups(parameters: pd.DataFrame) -> dict[str, np.ndarray]:
    """Group label -> the parameter indices in it, as the model grouped them at watch()
    ("layer 0", "layer 1", ... for an MLP; a name prefix for other models)."""
    groups: dict[str, np.ndarray] = {}
    for group, rows in parameters.groupby("group", sort=False):
        groups[str(group)] = rows["idx"].to_numpy(int)
    return groups


def neuron_groups(parameters: pd.DataFrame) -> dict[tuple[int, int], np.ndarray]:
    """(layer, neuron) -> the indices of its parameters (weights and bias)."""
    rows = parameters.dropna(subset=["layer", "neuron"])
    return {
        (int(layer), int(neuron)): g["idx"].to_numpy(dtype=np.int64)
        for (layer, neuron), g in rows.groupby(["layer", "neuron"], sort=True)
    }


def neuron_label(layer: int, neuron: int) -> str:
    """The heatmap's row label of a neuron; ``neuron_of`` reads it back."""
    return f"L{layer} n{neuron}"


def neuron_of(label: str) -> tuple[int, int] | None:
    """``"L0 n6"`` -> ``(0, 6)``; None for anything else."""
    parts = str(label).split()
    if len(parts) != 2 or not parts[0].startswith("L") or not parts[1].startswith("n"):
        return None
    try:
        return int(parts[0][1:]), int(parts[1][1:])
    except ValueError:
        return None


def histogram(values: np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray, int]:
    """Counts of the finite values in ``bins`` equal bins: (centers, counts, non-finite)."""
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    bad = len(x) - len(finite)
    if not len(finite):
        return np.array([]), np.array([]), bad
    # Binned in units of the largest magnitude: values near the float limit would
    # overflow the range (hi - lo = inf) or leave bins narrower than a float's step.
    scale = float(np.max(np.abs(finite))) or 1.0
    unit = finite / scale
    lo, hi = float(unit.min()), float(unit.max())
    if hi - lo < 1e-9:  # one value (to float precision): a bin of width 1 around it
        pad = max(0.5 / scale, 1e-6)
        lo, hi = lo - pad, hi + pad
    counts, edges = np.histogram(unit, bins=bins, range=(lo, hi))
    return (edges[:-1] + edges[1:]) / 2 * scale, counts, bad


def bounds(X: np.ndarray, margin: float = 0.25) -> tuple[float, float, float, float]:
    """The plot range around 2-D data (x0, x1, y0, y1), padded by ``margin`` of the span."""
    X = np.asarray(X, dtype=np.float64)
    finite = X[np.isfinite(X).all(axis=1)] if X.size else X
    if finite.size == 0 or finite.shape[1] != 2:
        return (-2.0, 2.0, -2.0, 2.0)
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    pad = np.maximum((hi - lo) * margin, 0.5)
    return (
        float(lo[0] - pad[0]),
        float(hi[0] + pad[0]),
        float(lo[1] - pad[1]),
        float(hi[1] + pad[1]),
    )


def grid_size(n_params: int, budget: int = 450_000) -> int:
    """Points per axis of the decision-boundary grid: 36 for the moons MLP (337
    parameters), fewer for bigger models, so evaluating the engine's ``predict`` on
    every point stays within ~40 ms; at most 40.
    """
    return int(max(12, min(40, math.isqrt(max(budget // max(n_params, 1), 1)))))


def decision_grid(
    spec: dict[str, Any],
    values: Sequence[float],
    box: tuple[float, float, float, float],
    n: int = 40,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model of ``spec`` with parameters ``values`` evaluated on an n x n grid
    over ``box``: (xs, ys, z[row=y, col=x]).

    The engine's ``MLP`` loads the parameters (so their order is the engine's own),
    and its ``predict`` runs on every grid point at once: the same operations in the
    same order on float64 arrays, so each score equals ``model.predict([x, y])``
    exactly, a hundred times faster than calling it point by point.
    """
    model = MLP.from_spec(spec)
    model.load_parameters(values)
    xs = np.linspace(box[0], box[1], n)
    ys = np.linspace(box[2], box[3], n)
    gx, gy = np.meshgrid(xs, ys)
    h: list[np.ndarray] = [gx.ravel(), gy.ravel()]
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in model.layers:
            out = []
            for neuron in layer.neurons:
                act = np.full(h[0].shape, neuron.b.data)
                for w, x in zip(neuron.w, h):
                    act = act + w.data * x
                if neuron.activation != "linear":  # the engine's op, bit for bit
                    act = OP_TABLE[neuron.activation].vforward(act, None)
                out.append(act)
            h = out
    return xs, ys, h[0].reshape(n, n)


def cell(value: Any) -> Any:
    """A JSON-safe grid cell: NaN/None -> None, non-finite floats and containers -> text."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, list | tuple | dict | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def runs_rows(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """``Store.runs()`` as JSON-safe grid rows (timestamps as UTC text), each with its
    duration as the command line writes it (``duration``; sorted by ``duration_s``)."""
    rows = [{k: cell(v) for k, v in row.items()} for row in runs.to_dict("records")]
    for row in rows:
        if "duration_s" in row:
            row["duration"] = duration(row["duration_s"])
    return rows


def config_diff(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``config.*`` keys whose values differ between the rows of ``runs``:
    one row per key, one column per run id."""
    cols = [c for c in runs.columns if c.startswith("config.")]
    rows = []
    for c in cols:
        values = [json.dumps(cell(v), sort_keys=True) for v in runs[c]]
        if len(set(values)) > 1:
            rows.append(
                {"key": c[len("config.") :], **{i: cell(v) for i, v in zip(runs["id"], runs[c])}}
            )
    return pd.DataFrame(rows, columns=["key", *runs["id"].tolist()])


def plotly_text(text: Any) -> str:
    """User text for Plotly titles, legends and hover labels: Plotly reads a few
    HTML tags in strings, so ``<``, ``>`` and ``&`` become entities it shows literally."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
