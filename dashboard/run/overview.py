"""Run page, curves: the metric curves with log-y, EMA smoothing and zoom, drawn in
the page's own request under the summary, and live growth while the run records."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Dash, Input, Output, Patch, State, dcc, html, no_update
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import curvefigures
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.divergence import auto_log
from gradtrace.dashboard.figures import skeleton
from gradtrace.dashboard.run import ids, summary
from gradtrace.dashboard.run.wiring import each, js, of
from gradtrace.dashboard.series import ema, zoom_ranges
from gradtrace.dashboard.ui import card, log_y_toggle
from gradtrace.tracer.display import duration

LIVE_MS = 1000
METRICS_HEIGHT = 240  # the other metrics' figure (curvefigures.metrics_figure)


def layout(rc: RunCache, step: int | None) -> html.Div:
    """The header and the curves drawn in the page itself (the first paint is the
    page's one request), and the live-poll timer."""
    metrics = rc.metrics()
    smoothing = 0.6
    last = int(metrics.index[-1]) if len(metrics) else None
    # a loss over many decades (a blow-up) opens on a log axis
    logy = "loss" in metrics and auto_log(metrics["loss"])
    return html.Div(
        [
            html.Div(id=ids.HEADER, className="card run-header", children=summary.header(rc)),
            card(
                "Curves",
                html.Div(
                    [
                        log_y_toggle(ids.LOGY, logy),
                        html.Label("smoothing (EMA)", htmlFor="run-smooth", className="lbl"),
                        html.Div(
                            dcc.Slider(
                                id="run-smooth",
                                min=0,
                                max=0.99,
                                step=0.01,
                                value=smoothing,
                                marks={0: "0", 0.5: "0.5", 0.9: "0.9"},
                            ),
                            className="smooth-slider",
                        ),
                    ],
                    className="controls",
                ),
                dcc.Graph(
                    id=ids.LOSS,
                    figure=curvefigures.loss_figure(
                        metrics, smoothing, logy, step, onset=loss_onset(rc)
                    ),
                    config={"displaylogo": False},
                ),
                # drawn just after the loss (see METRICS_AFTER_LOSS): both in the first
                # paint would hold the loss back until the second plot is done too
                dcc.Graph(
                    id=ids.METRICS,
                    figure=skeleton(METRICS_HEIGHT),
                    config={"displaylogo": False},
                    style={"height": f"{METRICS_HEIGHT}px"},
                ),
                dcc.Store(
                    id="run-metrics-first",
                    data=curvefigures.metrics_figure(metrics, smoothing, step),
                ),
            ),
            # started with the sections below: pages.run.lower
            dcc.Interval(id=ids.LIVE_TIMER, interval=LIVE_MS, disabled=True),
            dcc.Store(id="run-drawn", data=last),  # the last step the curves show
        ]
    )


def loss_onset(rc: RunCache) -> tuple[int, str] | None:
    """The step a diverged run started going wrong and why, for the loss chart."""
    if rc.first_nonfinite() is None:
        return None
    went = summary.onset_of(rc)
    return None if went is None else (went.step, went.story)


def meta_for(rc: RunCache) -> dict[str, Any]:
    """What the other sections need to know about the run, sent once per page."""
    spec = rc.view.model_spec or {}
    params = rc.parameters()
    return {
        "status": rc.view.status,
        "traced": bool(len(rc.traced())),
        "traced_steps": rc.traced().tolist(),  # the node table's step follows the slider
        "capture": rc.view.info.get("capture"),
        "nin": spec.get("nin"),
        "spec": spec or None,
        "n_params": len(params),
    }


def _smoothing(value: float | None) -> float:
    return min(max(float(value or 0.0), 0.0), 0.99)


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        Output(ids.LIVE, "data", allow_duplicate=True),
        Output(ids.LIVE_TIMER, "disabled", allow_duplicate=True),
        *of(Output, ids.STATUS, "children", "className"),
        *each(Output, "children", ids.STEPS, ids.LOSS_TEXT, ids.BEST, ids.ACC, ids.DURATION),
        Input(ids.LIVE_TIMER, "n_intervals"),
        *each(State, "data", ids.RUN_ID, ids.LIVE),
        prevent_initial_call=True,
    )
    def live(_n: int, run_id: str, shown: dict | None):
        """Read the steps logged since the last tick (the header's numbers follow the
        curve's newest point); stop when the run ends."""
        rc = ctx.run(run_id)
        _, last = rc.poll()
        status = rc.view.status
        done = status != "running"
        if last == (shown or {}).get("last") and not done:
            # no new step, but the clock runs: only the duration changes
            return (no_update,) * 8 + (duration(rc.summary()["duration_s"]),)
        return (
            {"last": last, "status": status},
            done,
            status,
            f"badge status-{status}",
            str(rc.view.info["steps"]),
            *summary.numbers(rc),
            duration(rc.summary()["duration_s"]),
        )

    # the slider's step is the page's step; every step-indexed chart marks it
    marked = State(ids.MARKED, "data")
    js(app, "step", Output(ids.STEP, "data"), Input(ids.SLIDER, "value"), marked)
    # the replay, once mounted, takes the click itself
    click = Input(ids.LOSS, "clickData")
    js(app, "clicked", Output(ids.STEP, "data", allow_duplicate=True), click, marked)
    # drawn with the log-y switch as it is now
    shown = (State("run-metrics-first", "data"), State(ids.METRICS, "figure"))
    metrics = Output(ids.METRICS, "figure", allow_duplicate=True)
    painted = Input(ids.PAINTED, "data")
    js(app, "metricsAfterLoss", metrics, painted, *shown, State(ids.LOGY, "value"))

    @app.callback(
        *each(Output, "figure", ids.LOSS, ids.METRICS),
        Output("run-drawn", "data"),
        *each(Input, "value", "run-smooth", ids.LOGY),
        Input(ids.LIVE, "data"),
        *each(Input, "relayoutData", ids.LOSS, ids.METRICS),
        *each(State, "data", ids.STEP, ids.RUN_ID, "run-drawn"),
        prevent_initial_call=True,  # the page drew them
    )
    def curves(
        smooth: float,
        logy: list,
        _live: dict | None,
        loss_zoom: dict | None,
        metrics_zoom: dict | None,
        step: int | None,
        run_id: str,
        drawn: int | None,
    ):
        """Patch the curves: the axis type, zoomed detail, new points; redraw them
        only when the smoothing changes. Every patch puts the marker at the slider's
        step too: the browser moves it (below) without telling the figure prop."""
        rc = ctx.run(run_id)
        metrics = rc.metrics()
        names = curvefigures.other_metrics(metrics)
        trigger = dash_ctx.triggered_id
        smoothing = _smoothing(smooth)
        if trigger == ids.LOGY:
            patches = _axis_patch(metrics, "log" in (logy or []))
            return (*_marked(patches, step, len(names)), no_update)
        if trigger in (ids.LOSS, ids.METRICS):
            loss, other, _ = _zoom_patch(metrics, trigger, loss_zoom, metrics_zoom, smoothing)
            return (*_marked((loss, other), step, len(names)), no_update)
        last = int(metrics.index[-1]) if len(metrics) else None
        if trigger == ids.LIVE and drawn is not None:
            return (*_marked(_grow(metrics, drawn, smoothing), step, len(names)), last)
        log = "log" in (logy or [])
        zoom = zoom_ranges(loss_zoom).get("xaxis")
        return (
            curvefigures.loss_figure(metrics, smoothing, log, step, zoom, loss_onset(rc)),
            curvefigures.metrics_figure(metrics, smoothing, step, log, zoom_ranges(metrics_zoom)),
            last,
        )


def _axis_patch(metrics: pd.DataFrame, log: bool) -> tuple[Patch, Patch]:
    """Both figures' y axes on ``log`` or linear (a steady series' fixed range too)."""
    kind = "log" if log else "linear"
    patches = []
    for names in (["loss"], curvefigures.other_metrics(metrics)):
        patch = Patch()
        steady = curvefigures.steady_axes(metrics, [n for n in names if n in metrics])
        for i in range(len(names)):
            axis = "yaxis" if i == 0 else f"yaxis{i + 1}"
            patch["layout"][axis]["type"] = kind
            if axis in steady:
                patch["layout"][axis]["range"] = steady[axis][kind]
        patches.append(patch)
    return patches[0], patches[1]


def _zoom_patch(
    metrics: pd.DataFrame,
    trigger: str,
    loss_zoom: dict | None,
    metrics_zoom: dict | None,
    smoothing: float,
) -> tuple[Any, Any, Any]:
    """Redraw the zoomed panels' pairs at full detail inside the new x range (the
    curves are downsampled to the plot's width over whatever range is shown)."""
    if trigger == ids.LOSS:
        ranges = zoom_ranges(loss_zoom)
        if "xaxis" not in ranges or "loss" not in metrics:
            raise PreventUpdate
        patch = Patch()
        pair = curvefigures.curve_pair(
            metrics.index,
            metrics["loss"].to_numpy(),
            smoothing,
            "loss",
            curvefigures.COLORWAY[0],
            "",
            ranges["xaxis"],
        )
        for k, trace in enumerate(pair):
            patch["data"][k] = trace
        return patch, no_update, no_update
    ranges = zoom_ranges(metrics_zoom)
    patch = Patch()
    changed = False
    for i, name in enumerate(curvefigures.other_metrics(metrics)):
        axis = "" if i == 0 else str(i + 1)
        if f"xaxis{axis}" not in ranges:
            continue
        pair = curvefigures.curve_pair(
            metrics.index,
            metrics[name].to_numpy(),
            smoothing,
            name,
            curvefigures.metric_color(i),
            axis,
            ranges[f"xaxis{axis}"],
        )
        for k, trace in enumerate(pair):
            patch["data"][curvefigures.PAIR * i + k] = trace
        changed = True
    if not changed:
        raise PreventUpdate
    return no_update, patch, no_update


def _marked(patches: tuple[Any, Any], step: int | None, n_other: int) -> tuple[Any, Any]:
    """The (loss, other) patches with the replay marker at ``step``: the figure props
    still hold the marker where the page drew it, and a patch would move it back."""
    loss, other = patches
    if isinstance(loss, Patch):
        loss["layout"]["shapes"] = curvefigures.marker(step)
    if isinstance(other, Patch):
        other["layout"]["shapes"] = curvefigures.metric_shapes(step, n_other)
    return loss, other


def _grow(metrics: pd.DataFrame, drawn: int, smoothing: float) -> tuple[Patch, Patch]:
    """Append the rows after step ``drawn`` to both curves figures (raw and EMA)."""
    new = metrics.index > drawn
    if not new.any():
        raise PreventUpdate
    x = metrics.index[new].astype(int).tolist()
    patches = []
    for names in (["loss"] if "loss" in metrics else [], curvefigures.other_metrics(metrics)):
        patch = Patch()
        for i, name in enumerate(names):
            values = metrics[name].to_numpy()
            raw, smooth = curvefigures.PAIR * i, curvefigures.PAIR * i + 1
            patch["data"][raw]["x"].extend(x)
            patch["data"][raw]["y"].extend(curvefigures.finite_list(values[new]))
            patch["data"][smooth]["x"].extend(x)
            patch["data"][smooth]["y"].extend(curvefigures.finite_list(ema(values, smoothing)[new]))
        patches.append(patch)
    return patches[0], patches[1]
