"""Figures of one replay step: per-layer histograms and the decision boundary.

>>> fig = boundary_figure(xs, ys, z, X, labels, step=16)     # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from gradtrace.dashboard.figures import (
    COLORWAY,
    MARGIN,
    NEG_POS,
    Figure,
    empty,
    finite_list,
    frame,
    plotly_text,
    subplots,
)


def histograms_figure(title: str, hists: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> Figure:
    """One panel per layer (counts per bin), side by side, each on its own x range:
    a wide layer's many weights cannot hide a narrow one's few."""
    if not hists:
        return empty(f"no {title} at this step")
    names = list(hists)
    titles = [
        plotly_text(f"{name} ({bad} NaN/inf)" if bad else name)
        for name, (_, _, bad) in hists.items()
    ]
    fig = subplots(1, len(names), titles, height=260, hovermode="closest", showlegend=False)
    notes = [f"{name}: {bad} NaN/inf" for name, (_, _, bad) in hists.items() if bad]
    fig["layout"]["title"] = {
        "text": plotly_text(title + (f"  ({'; '.join(notes)})" if notes else ""))
    }
    fig["layout"]["margin"] = {**MARGIN, "t": 56, "l": 40}
    for k, (centers, counts, _) in enumerate(hists.values()):
        width = float(centers[1] - centers[0]) if len(centers) > 1 else 1.0
        axis = "" if k == 0 else str(k + 1)
        fig["data"].append(
            {
                "type": "bar",
                "x": centers.tolist(),
                "y": counts.tolist(),
                "width": width,
                "name": titles[k],
                "marker": {"color": COLORWAY[k % len(COLORWAY)]},
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "hovertemplate": "%{x:.3g}: %{y}<extra>" + titles[k] + "</extra>",
            }
        )
        # fixed margins: every step moves the bins, so the tick labels change, and
        # automargin (the template's) re-measures them and lays the figure out again,
        # a third of a slider move's redraw; the labels here fit the set margins
        fig["layout"][f"xaxis{axis}"] = {
            **fig["layout"].get(f"xaxis{axis}", {}),
            "nticks": 4,
            "tickformat": ".2~g",
            "automargin": False,
        }
        fig["layout"][f"yaxis{axis}"] = {
            **fig["layout"].get(f"yaxis{axis}", {}),
            "automargin": False,
        }
    return fig


def boundary_figure(
    xs: np.ndarray,
    ys: np.ndarray,
    z: np.ndarray,
    X: np.ndarray,
    labels: np.ndarray | None,
    step: int,
) -> Figure:
    """The model's score over the input plane as a heatmap, the decision boundary
    (its 0 contour) as a line, and the training points read from the run's graph.

    Traces 0 and 1 hold the scores (``boundary_scores``); another step of the same
    grid changes only them and the title, which ``replay`` sends as a patch.
    """
    zz = boundary_scores(z)
    grid = {"x": xs.tolist(), "y": ys.tolist(), "z": zz}
    fig = frame(
        height=400,
        showlegend=False,
        hovermode="closest",
        title=boundary_title(step),
        xaxis={"range": [float(xs[0]), float(xs[-1])]},
        yaxis={"range": [float(ys[0]), float(ys[-1])]},
    )
    fig["data"] = [
        {
            # one image the browser scales smoothly ("fast"): filled contours, or
            # Plotly interpolating every pixel ("best"), cost a redraw several times more
            "type": "heatmap",
            **grid,
            "zsmooth": "fast",
            "colorscale": NEG_POS,
            "zmid": 0,
            "zmin": -SCORE_CLIP,
            "zmax": SCORE_CLIP,
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


SCORE_CLIP = 3.0  # the colour scale's ends: scores beyond are drawn as +-3


def boundary_scores(z: np.ndarray) -> list[list[float | None]]:
    """The grid's scores as the boundary figure's traces 0 and 1 hold them."""
    return [finite_list(r) for r in np.clip(z, -SCORE_CLIP, SCORE_CLIP)]


def boundary_title(step: int) -> str:
    """The boundary figure's title at ``step``."""
    return f"decision boundary at step {step}"
