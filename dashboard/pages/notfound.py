"""The page for an address the dashboard does not have: what happened and two ways
on, home or a search of the runs (``/?q=``). Dash's pages router shows the page
registered under the module name ``not_found_404`` for any unknown path."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html
from gradtrace.dashboard import ui
from gradtrace.dashboard.context import AppContext


def layout(**_: Any) -> html.Div:
    """The 404 card; the unknown address is filled in from the page's own location
    (as text, so Dash escapes it)."""
    return html.Div(
        [
            dcc.Location(id="notfound-url", refresh=False),
            html.H2("Page not found"),
            html.P(["Nothing lives at ", html.Code(id="notfound-path"), " in this dashboard."]),
            html.P(
                [
                    dcc.Link("← all runs", href="/", className="run-link", id="notfound-home"),
                    " or search the runs by name, status or config:",
                ]
            ),
            ui.run_search("notfound-search"),
        ],
        className="card not-found",
        id="notfound-card",
    )


def register(app: Dash, ctx: AppContext) -> None:
    """Add the page to ``app``."""
    dash.register_page(
        "not_found_404",  # the name Dash's router looks for
        path="/404",
        name="Not found",
        title="gradtrace · not found",
        layout=layout,
    )

    @app.callback(Output("notfound-path", "children"), Input("notfound-url", "pathname"))
    def show_path(path: str | None) -> str:
        return path or ""
