"""Run page, top: the run's name and the answers first — status (and the
divergence story: when it started going wrong, where the first NaN/inf came
from, and a button that replays that step with the graph on the node), loss
start → final and best, final accuracy, steps, duration (live), nodes per step,
health; the run's details (config, model, seed, ...) folded below.

>>> strip(rc, rc.first_nonfinite())      # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.run.wiring import js
from gradtrace.dashboard.ui import badge, facts
from gradtrace.tracer import Onset, Origin
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
            # filled by the health section's callback (dead and saturated neurons need
            # a node trace read): until then what the header already knows
            _stat("health", _first_badge(bad), id=ids.SUM_HEALTH),
        ],
        className="summary-strip",
        id="run-summary",
    )


def _first_badge(bad: Origin | None) -> html.A:
    if bad is None:
        return html.A("…", href="#run-health", id="run-sum-badge")
    return html.A("diverged", href="#run-health", className="badge health-bad", id="run-sum-badge")


def onset_of(rc: RunCache) -> Onset | None:
    """When the run started going wrong (``RunView.onset``); for a diverged run only
    up to its first NaN/inf (what follows is noise, and the header asks for it
    before the first paint: a few steps' parameters, not the whole run's)."""
    bad = rc.first_nonfinite()
    return rc.once("onset", lambda rc: rc.view.onset(until=None if bad is None else bad.step))


_GO = {
    "slider": ids.SLIDER,
    "mode": ids.GRAPH_MODE,
    "node": ids.GRAPH_NODE,
    "graph": f"#{ids.GRAPH}, #{ids.GRAPH_NONE}",
}


def story(bad: Origin | None, went: Onset | None = None) -> html.Div | None:
    """The divergence story: when it started going wrong, where the first NaN/inf
    came from, and a button that replays that step around the node."""
    if bad is None:
        return None
    go = "show the step" if bad.node is None else f"show step {bad.step}, node {bad.node}"
    parts: list[Any] = []
    if went is not None:
        parts.append(html.Div(went.story, id="run-story-onset"))
    first = f"The first NaN/inf: {bad.story}" if went is not None else bad.story
    return html.Div(
        [
            *parts,
            html.Div(
                [
                    html.Span(first, id="run-story-text"),
                    html.Button(go, id=ids.STORY_GO, n_clicks=0, className="btn btn-small"),
                ]
            ),
            # where the button goes, and the ids it moves (assets/run.js: toNode)
            dcc.Store(id="run-story-where", data={"step": bad.step, "node": bad.node, "ids": _GO}),
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
    told = story(bad, onset_of(rc) if bad is not None else None)
    if told is not None:
        out.append(told)
    out += [strip(rc, bad), details(rc)]
    return out


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""
    # In the browser: the button works from the moment it is visible, and waits
    # for the graph below the fold to be mounted before it moves it. (Its output is
    # never written: a callback without one makes Dash 4 check every callback's
    # inputs, and those below the fold are not mounted yet.)
    js(
        app,
        "toNode",
        Output("run-story-where", "data"),
        Input(ids.STORY_GO, "n_clicks"),
        State("run-story-where", "data"),
    )
