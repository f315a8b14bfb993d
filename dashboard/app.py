"""The Dash app: one read-only store per app, the runs page and the run page.

>>> app = create_app("runs.db")           # doctest: +SKIP
>>> serve("runs.db", port=8050)           # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import re
from html import escape as html_escape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dash
import dash_cytoscape as cyto
import flask
from dash import Dash, dcc, html
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, attach, context_for
from gradtrace.dashboard.pages import compare, notfound, run, runs

cyto.load_extra_layouts()  # dagre: the computation graph left to right, like graphviz

# Scripts left out of the page and loaded by the run page once its loss curve is
# drawn, before the sections below it (the graph view is the only user): the
# extra-layouts cytoscape bundle is the page's largest script after plotly.js.
DEFERRED = ("dash_cytoscape",)
# plotly.js for the page's charts: the cartesian bundle (npm plotly.js-cartesian-dist-min,
# the version plotly.py ships, 1.5 MB against the full bundle's 4.8 MB: every chart here
# is a scatter, bar, heatmap or contour), loaded by assets/plotly_early.js; the folder
# is served but not put in the page as script tags
PLOTLY_BUNDLE = "vendor/plotly-cartesian-4.1.1.min.js"


class _Dash(Dash):
    """Dash, with the ``DEFERRED`` component scripts out of the page (their URLs go
    in a ``gt-deferred`` JSON block that ``assets/run.js`` loads from) and the page's
    plotly.js (``PLOTLY_BUNDLE``) loading from the head."""

    def interpolate_index(self, **kwargs: Any) -> str:
        later: list[str] = []

        def keep(tag: re.Match) -> str:
            if any(f"/_dash-component-suites/{name}/" in tag.group(1) for name in DEFERRED):
                later.append(tag.group(1))
                return ""
            return tag.group(0)

        scripts = re.sub(r'<script src="([^"]+)"></script>', keep, kwargs["scripts"])
        block = json.dumps(later).replace("<", "\\u003c")
        kwargs["scripts"] = (
            f'<script id="gt-deferred" type="application/json">{block}</script>\n{scripts}'
        )
        if self.config.serve_locally:
            # in the head, async: downloaded and compiled off the main thread while
            # the page's other scripts load and run (assets/plotly_early.js waits on it)
            src = html_escape(self.get_asset_url(PLOTLY_BUNDLE))
            kwargs["metas"] = f'<script id="gt-plotly" async src="{src}"></script>\n' + kwargs.get(
                "metas", ""
            )
        return super().interpolate_index(**kwargs)


def create_app(db: str | None = None) -> Dash:
    """A dashboard over ``db`` (path or SQLAlchemy URL; default ``$GRADTRACE_DB`` or
    ``./gradtrace.db``), opened read-only."""
    ctx = AppContext(db)
    app = _Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        title="gradtrace",
        suppress_callback_exceptions=True,  # the run page's components exist only on it
        update_title=None,
        assets_path_ignore=["vendor"],  # PLOTLY_BUNDLE: loaded by plotly_early.js
    )
    attach(app, ctx)
    figures.frame()  # Plotly's validators load on first use (~0.2 s): not in a callback
    runs.register(app, ctx)
    run.register(app, ctx)
    compare.register(app, ctx)
    notfound.register(app, ctx)
    topbar = html.Header(
        [
            dcc.Link("gradtrace", href="/", className="brand"),
            dcc.Link("runs", href="/", className="crumb", id="crumb-runs"),
            html.Span(ctx.title, className="db", title="database (read-only)"),
        ],
        className="topbar",
    )
    prefix = app.config.requests_pathname_prefix or "/"
    app.layout = lambda: html.Div([topbar, html.Main(page_container(prefix), className="content")])
    return app


def page_container(prefix: str = "/") -> html.Div:
    """Dash's page container; for the run page's own load, with the page already in it.

    Dash fetches the layout (``/_dash-layout``) and only then asks its router, in a
    second request, for the page's content. The layout request names the page in
    its ``Referer``: a run page is built right here into a copy of Dash's own
    container (its components found by type, its ids left as Dash made them), and
    its location starts at that URL, so the router has nothing to do (for any other
    page, or without a ``Referer``, the router fills the page as before).
    """
    page = _run_page_from_referrer(prefix)
    if page is None:
        return dash.page_container
    (path, search), children, title = page
    container = copy.copy(dash.page_container)
    parts, filled = [], False
    for part in container.children:
        part = copy.copy(part)
        if isinstance(part, dcc.Location):
            part.pathname, part.search = path, search
        elif isinstance(part, dcc.Store):
            part.data = {"title": title}
        elif isinstance(part, html.Div) and not filled:  # the first div holds the page
            part.children, filled = children, True
        parts.append(part)
    container.children = parts
    return container


def _run_page_from_referrer(prefix: str) -> tuple[tuple[str, str], Any, str] | None:
    """``((path, search), layout, title)`` of the run page (under ``prefix``) that
    asked for the app's layout, or None when the request is not that."""
    if not flask.has_request_context() or not flask.request.path.endswith("_dash-layout"):
        return None
    referrer = urlsplit(flask.request.referrer or "")
    if referrer.netloc != flask.request.host:
        return None
    if not referrer.path.startswith(prefix):
        return None
    parts = referrer.path[len(prefix) :].strip("/").split("/")
    if len(parts) != 2 or parts[0] != "run" or not parts[1]:
        return None
    query = {**dict(parse_qsl(referrer.query)), "run_id": parts[1]}
    search = f"?{referrer.query}" if referrer.query else ""
    return (referrer.path, search), run.layout(**query), run.title(parts[1])


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
