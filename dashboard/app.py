"""The Dash app: one read-only store per app, the runs page and the run page.

>>> app = create_app("runs.db")           # doctest: +SKIP
>>> serve("runs.db", port=8050)           # doctest: +SKIP
"""

from __future__ import annotations

import dash
import dash_cytoscape as cyto
from dash import Dash, dcc, html
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, attach, context_for
from gradtrace.dashboard.pages import compare, run, runs

cyto.load_extra_layouts()  # dagre: the computation graph left to right, like graphviz


def create_app(db: str | None = None) -> Dash:
    """A dashboard over ``db`` (path or SQLAlchemy URL; default ``$GRADTRACE_DB`` or
    ``./gradtrace.db``), opened read-only."""
    ctx = AppContext(db)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        title="gradtrace",
        suppress_callback_exceptions=True,  # the run page's components exist only on it
        update_title=None,
    )
    attach(app, ctx)
    figures.frame()  # Plotly's validators load on first use (~0.2 s): not in a callback
    runs.register(app, ctx)
    run.register(app, ctx)
    compare.register(app, ctx)
    app.layout = html.Div(
        [
            html.Header(
                [
                    dcc.Link("gradtrace", href="/", className="brand"),
                    dcc.Link("runs", href="/", className="crumb", id="crumb-runs"),
                    html.Span(ctx.title, className="db", title="database (read-only)"),
                ],
                className="topbar",
            ),
            html.Main(dash.page_container, className="content"),
        ]
    )
    return app


def serve(
    db: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8050,
    open_run: str | None = None,
    debug: bool = False,
) -> None:
    """Print the dashboard's URL and serve it until interrupted.

    ``open_run`` (an id, id prefix or name) prints that run's page instead of the
    runs list. The server binds ``127.0.0.1`` unless told otherwise: runs can hold
    anything a training script logged, so exposing them is an explicit choice.
    """
    app = create_app(db)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # all interfaces: show one
    url = f"http://{shown}:{port}/"
    if open_run is not None:
        url += f"run/{context_for(app).run(open_run).id}"
    print(f"gradtrace dashboard: {url}  (database {context_for(app).title}; Ctrl-C stops)")
    app.run(host=host, port=port, debug=debug)
