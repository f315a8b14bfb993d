"""The run page (``/run/<run_id>?step=16``): one run replayed, section by section.

The header and the curves are drawn in the page's own request, so the first
paint needs no callback; the sections below fill in through their callbacks.
Sections live in ``dashboard.run`` with their own callbacks.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html
from gradtrace.dashboard.context import AppContext, context_for
from gradtrace.dashboard.run import health, ids, nodes, overview, replay, summary, weights
from gradtrace.dashboard.ui import message

from gradtrace import tracer


def layout(
    run_id: str | None = None, step: str | None = None, node: str | None = None, **_: Any
) -> html.Div:
    """The page of ``run_id`` at ``step`` (the last step when absent), its graph
    around ``node`` when given: ``/run/<id>?step=16&node=1021``."""
    try:
        rc = context_for().run(run_id or "")
    except tracer.GradtraceError as e:
        return not_found(run_id, str(e))
    at = replay.initial_step(rc, step)
    meta = overview.meta_for(rc)
    return html.Div(
        [
            dcc.Store(id=ids.RUN_ID, data=rc.id),
            dcc.Store(id=ids.META, data=meta),
            # in the order of the questions a user brings: how did it go, is it
            # healthy, what did the weights do, then step by step
            overview.layout(rc, at),
            health.layout(),
            weights.layout(),
            replay.layout(rc, at, meta),
            nodes.layout(meta, _whole(node)),
            dcc.Store(id="run-url"),  # written by the browser: the view's URL
        ],
        className="run-page",
    )


def _whole(text: str | None) -> int | None:
    """A non-negative whole number from the URL, else None (never an error page)."""
    try:
        value = int(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and value >= 0 else None


def not_found(run_id: str | None, why: str) -> html.Div:
    """What an unknown run id shows: why, a way back, and a search of the runs."""
    return html.Div(
        [
            html.H2("No such run"),
            message(why, "error", id="run-missing"),
            html.P(
                [
                    dcc.Link("← all runs", href="/", className="run-link"),
                    " or search them by name or id:",
                ]
            ),
            html.Form(
                [
                    dcc.Input(
                        id="run-search",
                        name="q",
                        type="search",
                        value=run_id or "",
                        placeholder="run name or id prefix",
                    ),
                    html.Button("search", type="submit", className="btn"),
                ],
                action="/",
                method="get",
                className="controls",
            ),
        ],
        className="card not-found",
    )


def title(run_id: str | None = None, **_: Any) -> str:
    """The browser tab title."""
    return f"gradtrace · run {(run_id or '')[:8]}"


def register(app: Dash, ctx: AppContext) -> None:
    """Add the page and the callbacks of all its sections to ``app``."""
    dash.register_page(
        __name__, path_template="/run/<run_id>", name="Run", title=title, layout=layout
    )
    # The address bar follows the view, so "step 16, node 1021 of run X" can be shared;
    # replaceState leaves Dash's router (and the browser history) alone.
    app.clientside_callback(
        """
        function(step, mode, node) {
            const q = new URLSearchParams(window.location.search);
            if (step !== null && step !== undefined) { q.set("step", step); }
            if (mode === "node" && node !== null && node !== undefined) { q.set("node", node); }
            else { q.delete("node"); }
            const url = window.location.pathname + "?" + q.toString();
            if (url !== window.location.pathname + window.location.search) {
                window.history.replaceState(window.history.state, "", url);
            }
            return url;
        }
        """,
        Output("run-url", "data"),
        Input(ids.SLIDER, "value"),
        Input(ids.GRAPH_MODE, "value"),
        Input(ids.GRAPH_NODE, "value"),
        prevent_initial_call=True,
    )
    summary.register(app, ctx)
    overview.register(app, ctx)
    health.register(app, ctx)
    replay.register(app, ctx)
    nodes.register(app, ctx)
    weights.register(app, ctx)
