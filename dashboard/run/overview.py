"""Run page, top: the header (name, status, config, sizes), the metric curves with
log-y and EMA smoothing, and live growth while the run is still recording."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from dash import Dash, Input, Output, Patch, State, dcc, html, no_update
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.data import ema, fmt_duration
from gradtrace.dashboard.ui import badge, card, facts, message

from gradtrace import tracer

LIVE_MS = 1000


def layout() -> html.Div:
    """The header placeholder, the curves and the live-poll timer."""
    return html.Div(
        [
            html.Div(
                id="run-header", className="card run-header", children=message("Loading the run…")
            ),
            card(
                "Curves",
                html.Div(
                    [
                        dcc.Checklist(
                            id="run-logy",
                            options=[{"label": " log y", "value": "log"}],
                            value=[],
                            inline=True,
                        ),
                        html.Label("smoothing (EMA)", htmlFor="run-smooth", className="lbl"),
                        html.Div(
                            dcc.Slider(
                                id="run-smooth",
                                min=0,
                                max=0.99,
                                step=0.01,
                                value=0.6,
                                marks={0: "0", 0.5: "0.5", 0.9: "0.9"},
                            ),
                            className="smooth-slider",
                        ),
                    ],
                    className="controls",
                ),
                dcc.Graph(id="run-loss", config={"displaylogo": False}),
                dcc.Graph(id="run-metrics", config={"displaylogo": False}),
            ),
            dcc.Interval(id="run-live-timer", interval=LIVE_MS, disabled=True),
            dcc.Store(id="run-live"),  # the newest step seen by the live poll
            dcc.Store(id="run-drawn"),  # the last step the curves show
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


def model_text(spec: dict[str, Any] | None) -> str:
    """``MLP(2, [16, 16, 1], relu), seed 1337`` for an engine MLP's spec."""
    if not spec:
        return "not recorded"
    if spec.get("type") == "MLP":
        seed = f", seed {spec['seed']}" if spec.get("seed") is not None else ""
        return f"MLP({spec['nin']}, {spec['nouts']}, {spec.get('activation', 'relu')}){seed}"
    return json.dumps(spec)


def header(rc: RunCache) -> list[Any]:
    """The run's identity and facts; every user string rendered as text."""
    s = rc.summary()
    started = s["started_at"].strftime("%Y-%m-%d %H:%M:%S UTC") if s["started_at"] else ""
    config = s["config"] or {}
    out: list[Any] = [
        html.Div(
            [
                html.H2(s["name"], id="run-name"),
                badge(s["status"], id="run-status"),
                html.Code(s["id"], className="run-id"),
            ],
            className="title-row",
        ),
        facts(
            [
                ("experiment", s["experiment"]),
                ("started", started),
                ("duration", fmt_duration(s["duration_s"])),
                ("steps", html.Span(str(s["steps"]), id="run-steps")),
                ("seed", "" if s["seed"] is None else s["seed"]),
                ("parameters", s["parameters"]),
                ("nodes per step", s["nodes_per_step"] or "not traced"),
                ("capture", s["capture"]),
                ("model", model_text(s["model"])),
            ]
        ),
    ]
    if config:
        out += [
            html.H4("config"),
            facts([(k, v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()]),
        ]
    if s["tags"]:
        out.append(html.Div(["tags: ", ", ".join(map(str, s["tags"]))], className="tags"))
    if s["notes"]:
        out.append(html.P(s["notes"], className="notes"))
    if s["error"]:
        out.append(html.Pre(s["error"], className="error-text"))
    return out


def _smoothing(value: float | None) -> float:
    return min(max(float(value or 0.0), 0.0), 0.99)


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        Output("run-header", "children"),
        Output("run-meta", "data"),
        Output("run-live-timer", "disabled"),
        Input("run-id", "data"),
    )
    def init(run_id: str | None):
        """Header and run facts (no per-step reads); polls while the run records."""
        if not run_id:
            raise PreventUpdate
        try:
            rc = ctx.run(run_id)
        except tracer.GradtraceError as e:
            return message(str(e), "error"), None, True
        if rc.live:
            rc.view.refresh()
        return header(rc), meta_for(rc), not rc.live

    @app.callback(
        Output("run-live", "data", allow_duplicate=True),
        Output("run-live-timer", "disabled", allow_duplicate=True),
        Output("run-status", "children"),
        Output("run-status", "className"),
        Output("run-steps", "children"),
        Input("run-live-timer", "n_intervals"),
        State("run-id", "data"),
        State("run-live", "data"),
        prevent_initial_call=True,
    )
    def live(_n: int, run_id: str, shown: dict | None):
        """Read the steps logged since the last tick; stop when the run ends."""
        rc = ctx.run(run_id)
        _, last = rc.poll()
        status = rc.view.status
        done = status != "running"
        if last == (shown or {}).get("last") and not done:
            raise PreventUpdate
        return (
            {"last": last, "status": status},
            done,
            status,
            f"badge status-{status}",
            str(rc.view.info["steps"]),
        )

    @app.callback(
        Output("run-loss", "figure"),
        Output("run-metrics", "figure"),
        Output("run-drawn", "data"),
        Input("run-meta", "data"),
        Input("run-smooth", "value"),
        Input("run-logy", "value"),
        Input("run-slider", "value"),
        Input("run-live", "data"),
        State("run-drawn", "data"),
    )
    def curves(
        meta: dict | None,
        smooth: float,
        logy: list,
        step: int | None,
        _live: dict | None,
        drawn: int | None,
    ):
        """Draw the curves; afterwards only patch them (a new marker, new points)."""
        if not meta:
            raise PreventUpdate
        rc = ctx.run(meta["id"])
        smoothing = _smoothing(smooth)
        metrics = rc.metrics()
        last = int(metrics.index[-1]) if len(metrics) else None
        trigger = dash_ctx.triggered_id
        if trigger == "run-slider":
            return (*_marker_patch(step, len(figures.other_metrics(metrics))), no_update)
        if trigger == "run-live" and drawn is not None:
            return (*_grow(metrics, drawn, smoothing), last)
        return (
            figures.loss_figure(metrics, smoothing, "log" in (logy or []), step),
            figures.metrics_figure(metrics, smoothing, step, "log" in (logy or [])),
            last,
        )


def _marker_patch(step: int | None, n_other: int) -> tuple[Patch, Patch]:
    loss, other = Patch(), Patch()
    loss["layout"]["shapes"] = figures.marker(step)
    other["layout"]["shapes"] = figures.metric_shapes(step, n_other)
    return loss, other


def _grow(metrics: pd.DataFrame, drawn: int, smoothing: float) -> tuple[Patch, Patch]:
    """Append the rows after step ``drawn`` to both curves figures (raw and EMA)."""
    new = metrics.index > drawn
    if not new.any():
        raise PreventUpdate
    x = metrics.index[new].astype(int).tolist()
    patches = []
    for names in (["loss"] if "loss" in metrics else [], figures.other_metrics(metrics)):
        patch = Patch()
        for i, name in enumerate(names):
            values = metrics[name].to_numpy()
            patch["data"][2 * i]["x"].extend(x)
            patch["data"][2 * i]["y"].extend(figures.finite_list(values[new]))
            patch["data"][2 * i + 1]["x"].extend(x)
            patch["data"][2 * i + 1]["y"].extend(figures.finite_list(ema(values, smoothing)[new]))
        patches.append(patch)
    return patches[0], patches[1]
