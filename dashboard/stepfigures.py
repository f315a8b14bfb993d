"""Figures of one replay step: per-layer histograms and the decision boundary."""

from __future__ import annotations

import numpy as np
from gradtrace.dashboard.data import plotly_text
from gradtrace.dashboard.figures import NEG_POS, Figure, empty, finite_list, frame


def histograms_figure(title: str, hists: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> Figure:
    """One bar series per layer (counts per bin), overlaid."""
    if not hists:
        return empty(f"no {title} at this step")
    notes = [f"{name}: {bad} NaN/inf" for name, (_, _, bad) in hists.items() if bad]
    fig = frame(
        height=260,
        barmode="overlay",
        hovermode="closest",
        title=plotly_text(title + (f"  ({'; '.join(notes)})" if notes else "")),
        legend={"orientation": "h", "y": -0.2},
    )
    for name, (centers, counts, _) in hists.items():
        width = float(centers[1] - centers[0]) if len(centers) > 1 else 1.0
        fig["data"].append(
            {
                "type": "bar",
                "x": centers.tolist(),
                "y": counts.tolist(),
                "width": width,
                "name": plotly_text(name),
                "opacity": 0.6,
            }
        )
    return fig


def boundary_figure(
    xs: np.ndarray,
    ys: np.ndarray,
    z: np.ndarray,
    X: np.ndarray,
    labels: np.ndarray | None,
    step: int,
) -> Figure:
    """The model's score over the input plane (the 0 contour is the decision
    boundary) with the training points read from the run's graph."""
    zz = [finite_list(r) for r in np.clip(z, -3, 3)]
    grid = {"x": xs.tolist(), "y": ys.tolist(), "z": zz}
    fig = frame(
        height=400,
        showlegend=False,
        hovermode="closest",
        title=f"decision boundary at step {step}",
        xaxis={"range": [float(xs[0]), float(xs[-1])]},
        yaxis={"range": [float(ys[0]), float(ys[-1])]},
    )
    fig["data"] = [
        {
            "type": "contour",
            **grid,
            "colorscale": NEG_POS,
            "zmid": 0,
            "zmin": -3,
            "zmax": 3,
            "contours": {"start": -3, "end": 3, "size": 0.5},
            "line": {"width": 0},
            "opacity": 0.75,
            "colorbar": {"title": {"text": "score"}, "thickness": 12},
            "hovertemplate": "x %{x:.2f}, y %{y:.2f}<br>score %{z:.3f}<extra></extra>",
        },
        {
            "type": "contour",
            **grid,
            "showscale": False,
            "hoverinfo": "skip",
            "contours": {"start": 0, "end": 0, "size": 1, "coloring": "none"},
            "line": {"width": 2, "color": "#111827"},
        },
    ]
    if X.size:
        color = (
            ["#1d4ed8" if v > 0 else "#b91c1c" for v in labels.tolist()]
            if labels is not None
            else "#111827"
        )
        fig["data"].append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": finite_list(X[:, 0]),
                "y": finite_list(X[:, 1]),
                "hoverinfo": "skip",
                "marker": {"color": color, "size": 6, "line": {"color": "white", "width": 1}},
            }
        )
    return fig
