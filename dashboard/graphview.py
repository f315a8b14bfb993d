"""Drawing a step's graph with cytoscape: the elements of the nodes a graph
algorithm picked (``graphs``), their colours and labels, and the stylesheet.

    >>> cyto_elements(nodes, param_names, focus)            # doctest: +SKIP

Only presentation lives here; which nodes to show is ``graphs``' business.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.dashboard.graphs import Children, parents_of
from gradtrace.tracer.display import number
from plotly.colors import sample_colorscale

GRAD_COLORSCALE = "YlOrRd"
ZERO_GRAD = "#eef0f3"


@dataclass(frozen=True)
class LeafLook:
    """How the leaves of one kind are drawn, in the graph and in its colour key."""

    css: str  # class of the node and of its key swatch
    key: str  # what the key says
    style: dict[str, Any]  # cytoscape style of the node

    @property
    def swatch(self) -> dict[str, str]:
        """The same border in CSS, for the key."""
        style = self.style
        return {
            "border": f"{style['border-width']}px {style.get('border-style', 'solid')} "
            f"{style.get('border-color', '#6b7280')}"
        }


def _box(width: int, height: int, border: int, **more: Any) -> dict[str, Any]:
    style = {"shape": "round-rectangle", "width": width, "height": height, "border-width": border}
    return style | {k.replace("_", "-"): v for k, v in more.items()}


# A leaf's kind (RunView.nodes()["kind"]) -> how it looks. Computed nodes are
# circles coloured by |grad|; "leaf" is a graph recorded before kinds were stored.
LEAVES: dict[str, LeafLook] = {
    "parameter": LeafLook("param", "parameter", _box(118, 40, 3, border_color="#2563eb")),
    "input": LeafLook("input", "input", _box(70, 34, 3, border_color="#16a34a")),
    "target": LeafLook(
        "target", "target", _box(70, 34, 4, border_color="#9333ea", border_style="double")
    ),
    "constant": LeafLook("constant", "constant", _box(56, 30, 2, border_style="dotted")),
    "leaf": LeafLook("leaf", "leaf, kind not recorded", _box(70, 34, 1, border_style="dashed")),
}

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
    *({"selector": f".{look.css}", "style": look.style} for look in LEAVES.values()),
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


def cyto_elements(
    nodes: pd.DataFrame,
    children: Children,
    shown: Sequence[int],
    param_names: Sequence[str],
    focus: Iterable[int] = (),
) -> list[dict]:
    """Cytoscape elements for the nodes ``shown`` and the edges between them.

    A node's class is ``op`` or its leaf kind's :data:`LEAVES` class (``param``,
    ``input``, ``target``, ``constant``, ``leaf``), plus ``nonfinite`` and ``focus``."""
    shown = list(dict.fromkeys(int(i) for i in shown))
    rows = nodes.iloc[shown]
    values = rows["value"].to_numpy(dtype=np.float64)
    grads = rows["grad"].to_numpy(dtype=np.float64)
    colors = _grad_colors(grads)
    focus = set(focus)
    inside = set(shown)
    out: list[dict] = []
    for k, (node, op, label, param, kind) in enumerate(
        zip(shown, rows["op"], rows["label"], rows["param"], rows["kind"], strict=True)
    ):
        is_param = not pd.isna(param)
        name = param_names[int(param)] if is_param else (label or op or kind)
        classes = [LEAVES[kind].css if op == "" else "op"]
        if not (math.isfinite(values[k]) and math.isfinite(grads[k])):
            classes.append("nonfinite")
        if node in focus:
            classes.append("focus")
        out.append(
            {
                "data": {
                    "id": str(node),
                    "label": f"{name}\n{number(values[k], 4)}\ng {number(grads[k], 4)}",
                    "name": name,
                    "op": op,
                    "kind": kind,
                    "value": number(values[k], 4),
                    "grad": number(grads[k], 4),
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
