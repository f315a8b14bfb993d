"""The run page (``/run/<run_id>?step=16``): one run replayed, section by section.

The header and the curves are drawn in the page's own request, so the first
paint needs no callback. The sections below the fold (health, weights, replay,
graph) are grey skeletons of their final size until the loss curve is on screen;
only then are they asked for and mounted, so their charts, grids and callbacks do
not compete with the first paint. Sections live in ``dashboard.run`` with their
own callbacks.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import ui
from gradtrace.dashboard.context import AppContext, RunCache, context_for
from gradtrace.dashboard.run import health, ids, nodes, overview, replay, summary, weights
from gradtrace.dashboard.run.wiring import each, js
from gradtrace.dashboard.ui import message

from gradtrace import tracer

# the charts indexed by step: each draws the replay step as a line (a shape named "step")
MARKED = (
    ids.LOSS,
    ids.METRICS,
    ids.H_UNITS,
    ids.H_RATIO,
    ids.H_GRADNORM,
    ids.W_HISTORY,
    ids.W_HEATMAP,
)
# the skeleton's blocks: the heights the sections take once drawn
BELOW_HEIGHTS = (("Training health", 640), ("Weights and gradients", 1140), ("Replay", 560))


def layout(
    run_id: str | None = None,
    step: str | None = None,
    node: str | None = None,
    weights: str | None = None,
    **_: Any,
) -> html.Div:
    """The page of ``run_id`` at ``step`` (the last step when absent), its graph
    around ``node`` and the weights section on ``weights`` (comma-separated names)
    when given: ``/run/<id>?step=16&node=1021&weights=layers.0.neurons.3.w.1``."""
    try:
        rc = context_for().run(run_id or "")
    except tracer.GradtraceError as e:
        return not_found(run_id, str(e))
    at = replay.initial_step(rc, step)
    return html.Div(
        [
            # the page's own stores: every callback of a control visible at the first
            # paint finds what it reads here, before the sections below are mounted
            dcc.Store(id=ids.RUN_ID, data=rc.id),
            dcc.Store(id=ids.STEP, data=at),
            dcc.Store(id=ids.LIVE),  # the newest step seen by the live poll
            dcc.Store(id=ids.MARKED, data=list(MARKED)),
            # in the order of the questions a user brings: how did it go, is it
            # healthy, what did the weights do, then step by step
            overview.layout(rc, at),
            dcc.Store(
                id=ids.BELOW_ARGS,
                data={"step": at, "node": _whole(node), "weights": _names(weights)},
            ),
            dcc.Store(id=ids.PAINTED),  # set by the browser once the loss is drawn
            html.Div(skeleton(), id=ids.BELOW),
            dcc.Store(id=ids.URL),  # written by the browser: the view's URL
        ],
        className="run-page",
    )


def skeleton() -> list[html.Section]:
    """Grey blocks where the sections below the curves will be."""
    return [
        html.Section(
            [html.Div(html.H3(title), className="card-head"), html.Div(className="skeleton")],
            className="card",
            style={"height": f"{height}px", "boxSizing": "border-box"},
        )
        for title, height in BELOW_HEIGHTS
    ]


def below(rc: RunCache, args: dict[str, Any], meta: dict[str, Any]) -> list[Any]:
    """The sections under the curves, in the order of the questions a user brings:
    is it healthy, what did the weights do, then step by step."""
    return [
        # what the sections need to know; here, so their callbacks start with them
        dcc.Store(id=ids.META, data=meta),
        # the live poll's news, here: a callback whose inputs are partly on the page
        # and partly not yet mounted fails in the browser
        dcc.Store(id=ids.LIVE_BELOW),
        health.layout(),
        weights.layout(args.get("weights") or []),
        replay.layout(rc, args.get("step"), meta),
        nodes.layout(meta, args.get("node")),
    ]


def _names(text: str | None) -> list[str]:
    """Weight names from the URL's ``weights=a,b`` (unknown names are dropped later)."""
    return [n for n in (text or "").split(",") if n.strip()][:20]


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
            ui.run_search("run-search", run_id or ""),
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
    # The address bar follows the view, so "step 16, node 1021 of run X" can be shared.
    # Two callbacks, as a run without node traces has no graph controls: a callback
    # with a missing input fails in the browser.
    js(app, "urlView", Output(ids.URL, "data"), *each(Input, "value", ids.SLIDER, ids.WEIGHTS))
    node = each(Input, "value", ids.GRAPH_MODE, ids.GRAPH_NODE)
    js(app, "urlNode", Output(ids.URL, "data", allow_duplicate=True), *node)
    # the sections below hear the live poll through a store mounted with them
    js(app, "same", Output(ids.LIVE_BELOW, "data"), Input(ids.LIVE, "data"))
    # The lower sections are asked for once the loss curve is drawn.
    painted = (Input(ids.RUN_ID, "data"), State(ids.LOSS, "id"))
    js(app, "whenPainted", Output(ids.PAINTED, "data"), *painted, initial=True)

    @app.callback(
        Output(ids.BELOW, "children"),
        Output(ids.LIVE_TIMER, "disabled"),
        Input(ids.PAINTED, "data"),
        *each(State, "data", ids.BELOW_ARGS, ids.STEP),
    )
    def lower(run_id: str | None, args: dict | None, step: int | None):
        """Mount the sections below the curves at the page's step (a click on the loss
        curve may have moved it meanwhile); then poll a live run."""
        if not run_id:
            raise PreventUpdate
        rc = ctx.run(run_id)
        args = {**(args or {}), "step": step if step is not None else (args or {}).get("step")}
        return below(rc, args, overview.meta_for(rc)), not rc.live

    summary.register(app, ctx)
    overview.register(app, ctx)
    health.register(app, ctx)
    replay.register(app, ctx)
    nodes.register(app, ctx)
    weights.register(app, ctx)
