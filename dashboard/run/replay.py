"""Run page, replay: a step slider with play/pause driving every per-step view —
the marker on the curves, the weight and gradient histograms per layer, and the
decision boundary of 2-input models rebuilt with the engine at that step."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from dash import (
    Dash,
    Input,
    Output,
    Patch,
    State,
    dcc,
    html,
    no_update,
    set_props,
)
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures, graphs, stepfigures
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.decision import bounds, decision_grid, grid_size
from gradtrace.dashboard.groups import histogram, layer_groups
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.run.wiring import each, js, of
from gradtrace.dashboard.ui import card, chart, message

RATES = (1, 2, 5, 10, 20)  # steps per second while playing
BOUNDARY = "run-boundary"  # dcc.Graph: the decision boundary (2-input models only)


def layout(rc: RunCache, step: int | None, meta: dict[str, Any]) -> html.Section:
    """Play/pause, rate, the step slider (at ``step``) and the per-step figures; the
    boundary panel is one line saying why for a model that is not 2-input."""
    steps = rc.step_list()
    first, last = (int(steps[0]), int(steps[-1])) if len(steps) else (0, 0)
    return card(
        "Replay",
        html.Div(
            [
                html.Button("▶ play", id="run-play", n_clicks=0, className="btn"),
                html.Div(
                    dcc.Dropdown(
                        id="run-speed",
                        options=[{"label": f"{r} steps / s", "value": r} for r in RATES],
                        value=5,
                        clearable=False,
                    ),
                    id="run-rate",
                    className="speed",
                    **{"data-max": str(max(RATES))},
                ),
                html.Div(
                    dcc.Slider(
                        id=ids.SLIDER,
                        min=first,
                        max=last,
                        step=1,
                        value=step,
                        marks=marks(first, last),
                    ),
                    className="step-slider",
                ),
            ],
            className="controls replay-controls",
        ),
        dcc.Interval(id="run-timer", interval=1000 // 5, disabled=True),
        dcc.Store(id="run-play-clock"),  # while playing: when and at which step it started
        dcc.Store(id="run-hist-step"),  # the step the histograms show (play waits for it)
        # which grid (and points) the drawn boundary has, so a step of the same grid
        # is sent as a patch of its scores (on every page: the callback reads it)
        dcc.Store(id="run-boundary-grid"),
        html.Div(
            [
                boundary_panel(meta),
                html.Div(
                    [
                        chart(ids.WEIGHT_HIST, 260),
                        chart(ids.GRAD_HIST, 260),
                    ]
                ),
            ],
            className="grid-2",
        ),
        note="step k shows the weights step k's forward pass used, before its update",
    )


def boundary_panel(meta: dict[str, Any]) -> Any:
    """The decision-boundary graph, or why there is none."""
    spec = meta.get("spec") or {}
    if has_boundary(meta):
        return html.Div(chart(BOUNDARY, 400))
    why = (
        f"No decision boundary: it is drawn for 2-input models; this one takes {spec['nin']}."
        if spec.get("nin") is not None
        else "No decision boundary: no engine MLP was watch()ed, so there is no model to draw."
    )
    return message(why, id="run-boundary-none")


def marks(first: int, last: int, n: int = 6) -> dict[int, str]:
    """At most about ``n`` step labels on round numbers (a multiple of 1, 2 or 5
    times a power of ten), the first step included: ``marks(0, 79)`` labels
    0, 20, 40, 60 (Dash would label every step)."""
    if last <= first:
        return {first: str(first)}
    rough = (last - first) / max(n - 1, 1)
    power = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    every = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    ticks = range(-(-first // every) * every, last + 1, every)
    out = {first: str(first)}
    out.update({t: str(t) for t in ticks if t - first >= every / 2 or t == first})
    return out


def initial_step(rc: RunCache, asked: str | int | None) -> int | None:
    """The step a page opens on: the one in its URL snapped to a logged step, else
    the last one."""
    steps = rc.step_list()
    if not len(steps):
        return None
    try:
        return snap(rc, int(asked)) if asked not in (None, "") else int(steps[-1])
    except (TypeError, ValueError):
        return int(steps[-1])


def snap(rc: RunCache, step: int | None) -> int | None:
    """The logged step at or before ``step`` (steps need not be contiguous)."""
    steps = rc.step_list()
    if step is None or not len(steps):
        return None
    i = int(np.searchsorted(steps, int(step), side="right")) - 1
    return int(steps[max(i, 0)])


def inputs_at(rc: RunCache, step: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Training inputs and (hinge) labels read off the nearest traced step's graph."""
    traced = rc.nearest_traced(step)
    if traced is None:
        return np.empty((0, 0)), None

    def read() -> tuple[np.ndarray, np.ndarray | None]:
        nodes, children, params = rc.nodes(traced), rc.children(traced), rc.parameters()
        return (
            graphs.training_inputs(nodes, children, params),
            graphs.hinge_labels(nodes, children, params),
        )

    return rc.cache.get(("inputs", traced), read)


def boundary(rc: RunCache, meta: dict[str, Any], step: int) -> tuple[str | None, Any]:
    """``(grid key, figure)`` of the decision boundary at ``step``, cached per (run,
    step); the key names the grid and training points the figure is drawn on (None
    for a figure that says why there is no boundary)."""
    spec = meta.get("spec")
    if not spec or spec.get("type") != "MLP":
        return None, figures.empty(
            "no model spec recorded: watch() an engine MLP to see its boundary"
        )
    if spec.get("nin") != 2:
        return None, figures.empty(
            f"the decision boundary needs a 2-input model; this one takes {spec.get('nin')} inputs"
        )

    def make() -> tuple[str | None, Any]:
        values = rc.param_row(step, "data")
        if values is None:
            return None, figures.empty(f"no parameter values recorded at step {step}")
        X, labels = inputs_at(rc, step)
        if X.size and X.shape[1] != 2:
            X = np.empty((0, 2))
        xs, ys, z = decision_grid(
            spec, values, bounds(X) if X.size else (-2, 2, -2, 2), grid_size(len(values))
        )
        if labels is not None and len(labels) != len(X):
            labels = None
        key = hashlib.blake2b(digest_size=8)
        for part in (xs, ys, X, labels if labels is not None else np.empty(0)):
            key.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
        return key.hexdigest(), stepfigures.boundary_figure(xs, ys, z, X, labels, step)

    return rc.cache.get(("boundary", step), make)


def boundary_patch(figure: dict[str, Any], step: int) -> Patch:
    """Move a drawn boundary figure of the same grid to ``figure``'s scores: traces 0
    and 1 (heatmap and 0 contour) and the title; the axes and points stay."""
    patch = Patch()
    for k in (0, 1):
        patch["data"][k]["z"] = figure["data"][k]["z"]
    patch["layout"]["title"]["text"] = stepfigures.boundary_title(step)
    return patch


def safely(make: Callable[[], Any], what: str, step: int | None, pair: bool = False) -> Any:
    """``make()``, or a figure saying that ``what`` cannot be drawn at ``step``: a
    failed step must replace the previous step's figure, never leave it standing.
    With ``pair``, ``make`` returns ``(key, figure)`` and so does a failure (key None)."""
    try:
        return make()
    except (ArithmeticError, ValueError, TypeError, OverflowError) as e:
        failed = figures.empty(f"cannot draw {what} at step {step}: {e}")
        return (None, failed) if pair else failed


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        *of(Output, ids.SLIDER, "min", "max", "marks", "value"),
        Input(ids.LIVE_BELOW, "data"),
        State(ids.RUN_ID, "data"),
        *of(State, ids.SLIDER, "value", "max"),
        prevent_initial_call=True,
    )
    def slider_range(shown: dict | None, run_id: str, value: int | None, top: int | None):
        """While live, grow the slider and follow the newest step if it was at the end."""
        steps = ctx.run(run_id).step_list()
        if not len(steps):
            raise PreventUpdate
        first, last = int(steps[0]), int(steps[-1])
        follow = value is None or value == top
        return first, last, marks(first, last), (last if follow else no_update)

    # Playing runs in the browser and keeps time (assets/run.js: play).
    js(
        app,
        "play",
        Output(ids.SLIDER, "value", allow_duplicate=True),
        Output("run-timer", "disabled"),
        Output("run-play", "children"),
        Output("run-timer", "interval"),
        Output("run-play-clock", "data"),
        # the play button, the timer, a click on the loss curve, the rate
        Input("run-play", "n_clicks"),
        Input("run-timer", "n_intervals"),
        Input(ids.LOSS, "clickData"),
        Input("run-speed", "value"),
        *of(State, ids.SLIDER, "value", "min", "max"),
        State("run-timer", "disabled"),
        *each(State, "data", "run-play-clock", "run-hist-step"),
    )

    # One request per slider move for the replay's figures: the histograms and the
    # boundary come in one response, so the browser redraws them in one pass instead
    # of waiting on two requests and handling two responses. The boundary graph
    # exists only for 2-input models (a callback output missing from the page fails
    # in the browser), so its figure is set as a side update when it is there.
    @app.callback(
        *each(Output, "figure", ids.WEIGHT_HIST, ids.GRAD_HIST),
        *each(Output, "data", "run-hist-step", "run-boundary-grid"),
        Input(ids.SLIDER, "value"),
        *each(State, "data", ids.META, ids.RUN_ID, "run-boundary-grid"),
    )
    def step_figures(value: int | None, meta: dict | None, run_id: str, drawn: str | None):
        """The step's histograms, and its decision boundary (2-input models): a patch
        of the scores when the browser has the same grid drawn, else the figure."""
        if value is None or not run_id:
            raise PreventUpdate
        rc = ctx.run(run_id)
        step = snap(rc, value)
        weights, grads = histogram_figures(rc, step, value)
        if not meta or not has_boundary(meta) or step is None:
            return weights, grads, value, no_update
        key, figure = safely(
            lambda: boundary(rc, meta, step), "the decision boundary", step, pair=True
        )
        if key is not None and key == drawn:
            set_props(BOUNDARY, {"figure": boundary_patch(figure, step)})
            return weights, grads, value, no_update
        set_props(BOUNDARY, {"figure": figure})
        return weights, grads, value, key


def has_boundary(meta: dict[str, Any]) -> bool:
    """Whether the replay draws a decision boundary (``boundary_panel``)."""
    spec = meta.get("spec") or {}
    return spec.get("type") == "MLP" and spec.get("nin") == 2


def histogram_figures(rc: RunCache, step: int | None, value: int) -> list[Any]:
    """Per-layer histograms of the weights and of their gradients at ``step`` (the
    logged step at or before the slider's ``value``)."""
    groups = layer_groups(rc.parameters())
    out = []
    for which, title in (("data", "weights"), ("grad", "gradients")):
        row = rc.param_row(step, which) if step is not None else None
        if row is None:
            out.append(figures.empty(f"no {title} recorded at step {value}"))
            continue

        def draw(row: np.ndarray = row, title: str = title) -> Any:
            per_layer = {name: histogram(row[idx]) for name, idx in groups.items()}
            return stepfigures.histograms_figure(f"{title} at step {step}", per_layer)

        out.append(safely(draw, f"the {title} histogram", step))
    return out
