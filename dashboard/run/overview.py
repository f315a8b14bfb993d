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
from gradtrace.dashboard.data import ema, zoom_ranges
from gradtrace.dashboard.figures import skeleton
from gradtrace.dashboard.run import ids, summary
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
    return html.Div(
        [
            html.Div(id="run-header", className="card run-header", children=summary.header(rc)),
            card(
                "Curves",
                html.Div(
                    [
                        log_y_toggle("run-logy"),
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
                    figure=curvefigures.loss_figure(metrics, smoothing, False, step),
                    config={"displaylogo": False},
                ),
                # drawn just after the loss (see METRICS_AFTER_LOSS): both in the first
                # paint would hold the loss back until the second plot is done too
                dcc.Graph(
                    id="run-metrics",
                    figure=skeleton(METRICS_HEIGHT),
                    config={"displaylogo": False},
                    style={"height": f"{METRICS_HEIGHT}px"},
                ),
                dcc.Store(
                    id="run-metrics-first",
                    data=curvefigures.metrics_figure(metrics, smoothing, step),
                ),
            ),
            # started with the sections below (the live store is there): pages.run.lower
            dcc.Interval(id="run-live-timer", interval=LIVE_MS, disabled=True),
            dcc.Store(id="run-drawn", data=last),  # the last step the curves show
        ]
    )


def meta_for(rc: RunCache) -> dict[str, Any]:
    """What the other sections need to know about the run, sent once per page."""
    spec = rc.view.model_spec or {}
    params = rc.parameters()
    return {
        "id": rc.id,
        "status": rc.view.status,
        "traced": bool(len(rc.traced())),
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
        Output("run-live-timer", "disabled", allow_duplicate=True),
        Output("run-status", "children"),
        Output("run-status", "className"),
        Output("run-steps", "children"),
        Output("run-duration", "children"),
        Input("run-live-timer", "n_intervals"),
        State(ids.RUN_ID, "data"),
        State(ids.LIVE, "data"),
        prevent_initial_call=True,
    )
    def live(_n: int, run_id: str, shown: dict | None):
        """Read the steps logged since the last tick; stop when the run ends."""
        rc = ctx.run(run_id)
        _, last = rc.poll()
        status = rc.view.status
        done = status != "running"
        if last == (shown or {}).get("last") and not done:
            # no new step, but the clock runs: only the duration changes
            return (no_update,) * 5 + (duration(rc.summary()["duration_s"]),)
        return (
            {"last": last, "status": status},
            done,
            status,
            f"badge status-{status}",
            str(rc.view.info["steps"]),
            duration(rc.summary()["duration_s"]),
        )

    app.clientside_callback(MOVE_MARKER, Input(ids.SLIDER, "value"), prevent_initial_call=True)
    app.clientside_callback(
        METRICS_AFTER_LOSS,
        Output("run-metrics", "figure", allow_duplicate=True),
        Input(ids.PAINTED, "data"),
        State("run-metrics-first", "data"),
        State("run-metrics", "figure"),
        State("run-logy", "value"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.LOSS, "figure"),
        Output("run-metrics", "figure"),
        Output("run-drawn", "data"),
        Input("run-smooth", "value"),
        Input("run-logy", "value"),
        Input(ids.LIVE, "data"),
        Input(ids.LOSS, "relayoutData"),
        Input("run-metrics", "relayoutData"),
        State(ids.SLIDER, "value"),
        State(ids.RUN_ID, "data"),
        State("run-drawn", "data"),
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
        if trigger == "run-logy":
            patches = _axis_patch("log" in (logy or []), len(names))
            return (*_marked(patches, step, len(names)), no_update)
        if trigger in ("run-loss", "run-metrics"):
            loss, other, _ = _zoom_patch(metrics, trigger, loss_zoom, metrics_zoom, smoothing)
            return (*_marked((loss, other), step, len(names)), no_update)
        last = int(metrics.index[-1]) if len(metrics) else None
        if trigger == ids.LIVE and drawn is not None:
            return (*_marked(_grow(metrics, drawn, smoothing), step, len(names)), last)
        log = "log" in (logy or [])
        zoom = zoom_ranges(loss_zoom).get("xaxis")
        return (
            curvefigures.loss_figure(metrics, smoothing, log, step, zoom),
            curvefigures.metrics_figure(metrics, smoothing, step, log, zoom_ranges(metrics_zoom)),
            last,
        )


def _axis_patch(log: bool, n_other: int) -> tuple[Patch, Patch]:
    loss, other = Patch(), Patch()
    kind = "log" if log else "linear"
    loss["layout"]["yaxis"]["type"] = kind
    for i in range(n_other):
        other["layout"]["yaxis" if i == 0 else f"yaxis{i + 1}"]["type"] = kind
    return loss, other


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


# The other metrics' figure comes with the page (a store) and is drawn once the loss
# is on screen; unless the curves callback has drawn it meanwhile (a smoothing
# change), with the log-y switch as it is now.
METRICS_AFTER_LOSS = """
function(painted, figure, shown, logy) {
    const nu = dash_clientside.no_update;
    if (!painted || !figure || !shown || !shown.layout || shown.layout.meta !== "skeleton") {
        return nu;
    }
    const kind = (logy || []).includes("log") ? "log" : "linear";
    const layout = Object.assign({}, figure.layout);
    for (const key of Object.keys(layout)) {
        if (/^yaxis[0-9]*$/.test(key) && !layout[key].overlaying) {
            layout[key] = Object.assign({}, layout[key], {type: kind});
        }
    }
    return Object.assign({}, figure, {layout: layout});
}
"""

# A slider move changes nothing on the curves but the marker: the browser moves the
# marker's drawn line itself and records the step in the plot's layout (so any later
# redraw — zoom, resize — puts it there too). A figure patch would hand the whole
# figure to Plotly.react, and even Plotly.relayout of one shape redraws the plot.
MOVE_MARKER = """
function(step) {
    if (step === null || step === undefined || !window.Plotly) { return; }
    for (const id of ["run-loss", "run-metrics"]) {
        const gd = document.querySelector("#" + id + " .js-plotly-plot");
        const full = gd && gd._fullLayout;
        const shapes = (gd && gd.layout && gd.layout.shapes) || [];
        const edit = {};
        shapes.forEach((s, i) => {
            if (!(s.type === "line" && s.yref === "paper" && s.x0 === s.x1
                  && s.line && s.line.color === "MARKER_COLOR")) { return; }
            s.x0 = s.x1 = step;
            const fs = full && full.shapes && full.shapes[i];
            const xa = full && full["xaxis" + (s.xref || "x").slice(1)];
            const path = gd.querySelector('.shapelayer path[data-index="' + i + '"]');
            const d = path && path.getAttribute("d");
            const ys = d && d.match(/^M[^,]+,([^L]+)L[^,]+,(.+)$/);
            if (fs && xa && ys) {
                fs.x0 = fs.x1 = step;
                const px = xa._offset + xa.r2p(step);
                path.setAttribute("d", "M" + px + "," + ys[1] + "L" + px + "," + ys[2]);
            } else {
                edit["shapes[" + i + "].x0"] = step;
                edit["shapes[" + i + "].x1"] = step;
            }
        });
        if (Object.keys(edit).length) { window.Plotly.relayout(gd, edit); }
    }
}
""".replace("MARKER_COLOR", curvefigures.MARKER_COLOR)


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
