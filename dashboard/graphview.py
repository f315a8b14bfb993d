"""Drawing a step's graph with cytoscape: the elements of the nodes a graph
algorithm picked (``graphs``), their colours and labels, and the stylesheet.

    >>> fmt(0.000123456), fmt(float("-inf"))
    ('0.0001235', '-inf')

Only presentation lives here; which nodes to show is ``graphs``' business.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from gradtrace.dashboard.graphs import Children, parents_of
from plotly.colors import sample_colorscale

GRAD_COLORSCALE = "YlOrRd"
ZERO_GRAD = "#eef0f3"

STYLESHEET = [
    {
        "selector": "node",
        "style": {
            "label": "data(label)",
            "text-wrap": "wrap",
            "font-size": 9,
            "text-valign": "center",
            "background-color": "data(color)",
            "color": "#111827",
            "text-outline-color": "#ffffff",
            "text-outline-width": 2,
            "width": 46,
            "height": 46,
            "border-width": 1,
            "border-color": "#6b7280",
        },
    },
    {
        "selector": ".param",
        "style": {
            "shape": "round-rectangle",
            "width": 118,
            "height": 40,
            "border-width": 3,
            "border-color": "#2563eb",
        },
    },
    {
        "selector": ".leaf",
        "style": {"shape": "round-rectangle", "width": 70, "height": 34, "border-style": "dashed"},
    },
    {"selector": ".nonfinite", "style": {"border-color": "#dc2626", "border-width": 4}},
    {"selector": ".focus", "style": {"border-color": "#f59e0b", "border-width": 4}},
    {"selector": "node:selected", "style": {"border-color": "#111827", "border-width": 5}},
    {
        "selector": "edge",
        "style": {
            "curve-style": "bezier",
            "target-arrow-shape": "triangle",
            "width": 1.5,
            "line-color": "#9ca3af",
            "target-arrow-color": "#9ca3af",
        },
    },
]
LAYOUT = {"name": "dagre", "rankDir": "LR", "nodeSep": 8, "rankSep": 40, "animate": False}


def _grad_colors(grads: np.ndarray) -> list[str]:
    """A colour per node from log10 |grad| over the shown nodes (0 and NaN: grey)."""
    mags = np.abs(grads)
    finite = np.isfinite(mags) & (mags > 0)
    if not finite.any():
        return [ZERO_GRAD] * len(grads)
    logs = np.log10(np.where(finite, mags, 1.0))
    lo, hi = logs[finite].min(), logs[finite].max()
    span = hi - lo if hi > lo else 1.0
    pos = np.clip(0.08 + 0.62 * (logs - lo) / span, 0.0, 1.0)  # no dark reds: labels
    colors = sample_colorscale(GRAD_COLORSCALE, pos.tolist())
    return [c if ok else ZERO_GRAD for c, ok in zip(colors, finite.tolist(), strict=True)]


def fmt(x: float) -> str:
    """A short number for node labels: 4 significant digits, nan/inf spelt out."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def cyto_elements(
    nodes: pd.DataFrame,
    children: Children,
    shown: Sequence[int],
    param_names: Sequence[str],
    focus: Iterable[int] = (),
) -> list[dict]:
    """Cytoscape elements for the nodes ``shown`` and the edges between them."""
    shown = list(dict.fromkeys(int(i) for i in shown))
    rows = nodes.iloc[shown]
    values = rows["value"].to_numpy(dtype=np.float64)
    grads = rows["grad"].to_numpy(dtype=np.float64)
    colors = _grad_colors(grads)
    focus = set(focus)
    inside = set(shown)
    out: list[dict] = []
    for k, (node, op, label, param) in enumerate(
        zip(shown, rows["op"], rows["label"], rows["param"], strict=True)
    ):
        is_param = not pd.isna(param)
        kind = "param" if is_param else ("leaf" if op == "" else "op")
        name = param_names[int(param)] if is_param else (label or op or "leaf")
        classes = [kind]
        if not (math.isfinite(values[k]) and math.isfinite(grads[k])):
            classes.append("nonfinite")
        if node in focus:
            classes.append("focus")
        out.append(
            {
                "data": {
                    "id": str(node),
                    "label": f"{name}\n{fmt(values[k])}\ng {fmt(grads[k])}",
                    "name": name,
                    "op": op,
                    "value": fmt(values[k]),
                    "grad": fmt(grads[k]),
                    "color": colors[k],
                },
                "classes": " ".join(classes),
            }
        )
    for node in shown:
        for p in parents_of(children, node):
            if p in inside:
                out.append({"data": {"id": f"{p}-{node}", "source": str(p), "target": str(node)}})
    return out
