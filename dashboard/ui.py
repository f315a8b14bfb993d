"""Small layout pieces shared by the pages. Every user-provided string goes into
components as a child string, which React renders as text, never as HTML."""

from __future__ import annotations

from typing import Any

from dash import dcc, html
from gradtrace.dashboard.figures import skeleton

STATUS_CLASSES = ("running", "finished", "failed", "interrupted", "terminated", "crashed")


def card(title: str, *children: Any, id: str | None = None, note: Any = None) -> html.Section:
    """A titled panel."""
    head = [html.H3(title)]
    if note is not None:
        head.append(html.Div(note, className="card-note"))
    kwargs = {"id": id} if id else {}
    return html.Section(
        [html.Div(head, className="card-head"), *children], className="card", **kwargs
    )


def chart(id: str, height: int = 260) -> dcc.Graph:
    """A Plotly chart of a fixed height, a grey skeleton until its callback fills it."""
    return dcc.Graph(
        id=id,
        figure=skeleton(height),
        config={"displaylogo": False},
        style={"height": f"{height}px"},
    )


def badge(status: str, id: str | None = None) -> html.Span:
    """A coloured status label (``running``, ``finished``, ``crashed``, ...)."""
    cls = status if status in STATUS_CLASSES else "unknown"
    kwargs = {"id": id} if id else {}
    return html.Span(status, className=f"badge status-{cls}", **kwargs)


def facts(pairs: list[tuple[str, Any]]) -> html.Dl:
    """A definition list of ``(label, value)`` pairs; values shown as text."""
    items: list[Any] = []
    for label, value in pairs:
        items += [html.Dt(label), html.Dd(value if isinstance(value, html.Span) else str(value))]
    return html.Dl(items, className="facts")


def run_search(id: str, value: str = "") -> html.Form:
    """A search of the runs list (``/?q=``): name, status or config, or an id prefix."""
    return html.Form(
        [
            dcc.Input(
                id=id, name="q", type="search", value=value, placeholder="run name or id prefix"
            ),
            html.Button("search", type="submit", className="btn"),
        ],
        action="/",
        method="get",
        className="controls",
    )


def message(text: str, kind: str = "info", id: str | None = None) -> html.Div:
    """A one-line notice (``info``, ``warn`` or ``error``)."""
    kwargs = {"id": id} if id else {}
    return html.Div(text, className=f"notice notice-{kind}", **kwargs)


def log_y_toggle(id: str, on: bool = False) -> dcc.Checklist:
    """The "log y" switch of a set of curves; its value is ``["log"]`` when on."""
    return dcc.Checklist(
        id=id,
        options=[{"label": " log y", "value": "log"}],
        value=["log"] if on else [],
        inline=True,
    )
