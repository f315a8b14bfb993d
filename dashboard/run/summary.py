"""Run page, top: the run's name and the answers first — status (and where it
diverged, with a button that replays that step and centres the graph on the
node), loss start → final and best, final accuracy, steps, duration (live),
nodes per step; the run's details (config, model, seed, ...) folded below.

>>> strip(rc, rc.first_nonfinite())      # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.ui import badge, facts
from gradtrace.tracer import Origin
from gradtrace.tracer.display import duration, number


def model_text(spec: dict[str, Any] | None) -> str:
    """``MLP(2, [16, 16, 1], relu)`` for an engine MLP's spec (the seed has its own row)."""
    if not spec:
        return "not recorded"
    if spec.get("type") == "MLP":
        return f"MLP({spec['nin']}, {spec['nouts']}, {spec.get('activation', 'relu')})"
    return json.dumps(spec)


@dataclass(frozen=True)
class Headline:
    """The numbers of the summary strip, read from the logged metrics."""

    loss_start: float | None
    loss_final: float | None
    loss_best: float | None
    best_step: int | None
    acc_final: float | None


def headline(metrics: pd.DataFrame) -> Headline:
    """Loss at the first and last step and its best (smallest finite) value with its
    step; the last finite accuracy (``acc`` or ``accuracy``)."""

    def finite(name: str) -> pd.Series:
        if name not in metrics:
            return pd.Series(dtype=float)
        col = metrics[name].astype(float)
        return col[np.isfinite(col.to_numpy())]

    loss = metrics["loss"].astype(float) if "loss" in metrics else pd.Series(dtype=float)
    good = finite("loss")
    acc = finite("acc") if "acc" in metrics else finite("accuracy")
    return Headline(
        loss_start=float(loss.iloc[0]) if len(loss) else None,
        loss_final=float(loss.iloc[-1]) if len(loss) else None,
        loss_best=float(good.min()) if len(good) else None,
        best_step=int(good.idxmin()) if len(good) else None,
        acc_final=float(acc.iloc[-1]) if len(acc) else None,
    )


def _stat(label: str, value: Any, id: str | None = None, title: str | None = None) -> html.Div:
    kwargs = {"id": id} if id else {}
    return html.Div(
        [
            html.Div(label, className="stat-label"),
            html.Div(value, className="stat-value", **kwargs),
        ],
        className="stat",
        title=title,
    )


def numbers(rc: RunCache) -> tuple[str, str, str]:
    """The strip's loss (start → final), best loss and final accuracy, as text: the
    page draws them, and the live poll rewrites them with every new step."""
    h = headline(rc.metrics())
    loss = "no loss"
    if h.loss_start is not None:
        loss = f"{number(h.loss_start, 4)} → {number(h.loss_final, 4)}"
    best = f"{number(h.loss_best, 4)} @ {h.best_step}" if h.best_step is not None else "—"
    return loss, best, number(h.acc_final, 4)


def strip(rc: RunCache, bad: Origin | None) -> html.Div:
    """The headline numbers, one line at desktop width."""
    s = rc.summary()
    loss, best, acc = numbers(rc)
    status = [badge(s["status"], id=ids.STATUS)]
    if bad is not None:
        status.append(
            html.Span(
                f"diverged at step {bad.step}", className="badge status-failed", id="run-diverged"
            )
        )
    return html.Div(
        [
            _stat("status", status),
            _stat("loss start → final", loss, id=ids.LOSS_TEXT),
            _stat("best loss", best, id=ids.BEST),
            _stat("final accuracy", acc, id=ids.ACC),
            _stat("steps", str(s["steps"]), id=ids.STEPS),
            _stat("duration", duration(s["duration_s"]), id=ids.DURATION),
            _stat("parameters", str(s["parameters"]), id="run-sum-params"),
            _stat("nodes per step", str(s["nodes_per_step"] or "not traced"), id="run-sum-nodes"),
            # filled by the health section's callback: links down to its panels
            _stat("health", html.A("…", href="#run-health"), id=ids.SUM_HEALTH),
        ],
        className="summary-strip",
        id="run-summary",
    )


def story(bad: Origin | None) -> html.Div | None:
    """The divergence story with a button that replays its step."""
    if bad is None:
        return None
    go = "show the step" if bad.node is None else f"show step {bad.step}, node {bad.node}"
    return html.Div(
        [
            html.Span(bad.story, id="run-story-text"),
            html.Button(go, id=ids.STORY_GO, n_clicks=0, className="btn btn-small"),
        ],
        className="notice notice-error story",
        id="run-story",
    )


def details(rc: RunCache) -> html.Details:
    """Everything else the run recorded, folded: user strings rendered as text."""
    s = rc.summary()
    started = s["started_at"].strftime("%Y-%m-%d %H:%M:%S UTC") if s["started_at"] else ""
    spec = s["model"] or {}
    seed = s["seed"] if s["seed"] is not None else spec.get("seed")
    config = s["config"] or {}
    body: list[Any] = [
        facts(
            [
                ("experiment", s["experiment"]),
                ("started", started),
                ("seed", "not recorded" if seed is None else seed),
                ("capture", s["capture"]),
                ("model", model_text(s["model"])),
                *[(k, v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()],
            ]
        )
    ]
    if s["tags"]:
        body.append(html.Div(["tags: ", ", ".join(map(str, s["tags"]))], className="tags"))
    if s["notes"]:
        body.append(html.P(s["notes"], className="notes"))
    if s["error"]:
        body.append(html.Pre(s["error"], className="error-text"))
    return html.Details([html.Summary("run details: config, model, seed"), *body])


def header(rc: RunCache) -> list[Any]:
    """Name and id, the divergence story, the summary strip, the folded details."""
    s = rc.summary()
    bad = rc.first_nonfinite()
    out: list[Any] = [
        html.Div(
            [html.H2(s["name"], id="run-name"), html.Code(s["id"], className="run-id")],
            className="title-row",
        ),
    ]
    told = story(bad)
    if told is not None:
        out.append(told)
    out += [strip(rc, bad), details(rc)]
    return out


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        Output(ids.SLIDER, "value", allow_duplicate=True),
        Output(ids.GRAPH_MODE, "value"),
        Output(ids.GRAPH_NODE, "value", allow_duplicate=True),
        Input(ids.STORY_GO, "n_clicks"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def go_to_divergence(clicks: int | None, run_id: str):
        """Replay the step where the run diverged, the graph centred on its node."""
        bad = ctx.run(run_id).first_nonfinite() if clicks else None
        if bad is None:
            raise PreventUpdate
        if bad.node is None:
            return bad.step, no_update, no_update
        return bad.step, "node", bad.node
