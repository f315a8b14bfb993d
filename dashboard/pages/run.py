"""The run page (``/run/<run_id>``): one run replayed, section by section.

The layout is a skeleton holding only the run id; every number arrives through
a callback, so opening a page never blocks on a big read. Sections live in
``dashboard.run`` with their own callbacks.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, dcc, html
from gradtrace.dashboard.context import AppContext
from gradtrace.dashboard.run import nodes, overview, replay, weights


def layout(run_id: str | None = None, **_: Any) -> html.Div:
    """The page skeleton for ``run_id``; callbacks fill it in."""
    return html.Div(
        [
            dcc.Store(id="run-id", data=run_id),
            dcc.Store(id="run-meta"),
            overview.layout(),
            replay.layout(),
            nodes.layout(),
            weights.layout(),
        ],
        className="run-page",
    )


def title(run_id: str | None = None, **_: Any) -> str:
    """The browser tab title."""
    return f"gradtrace · run {(run_id or '')[:8]}"


def register(app: Dash, ctx: AppContext) -> None:
    """Add the page and the callbacks of all its sections to ``app``."""
    dash.register_page(
        __name__, path_template="/run/<run_id>", name="Run", title=title, layout=layout
    )
    overview.register(app, ctx)
    replay.register(app, ctx)
    nodes.register(app, ctx)
    weights.register(app, ctx)
