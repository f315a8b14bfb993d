"""The runs page (``/``): every recorded run in a sortable, filterable grid that
refreshes itself; tick several runs to overlay their loss curves and see the
config keys they differ in. A run's name links to its page."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, context_for
from gradtrace.dashboard.data import config_diff, plotly_text, runs_rows
from gradtrace.dashboard.ui import card, message

REFRESH_MS = 3000
STATUS_RULES = {
    f"status-{s}": f"params.value === '{s}'"
    for s in ("running", "finished", "failed", "interrupted", "terminated", "crashed")
}
BASE_COLUMNS: list[dict[str, Any]] = [
    {"field": "name", "cellRenderer": "RunLink", "minWidth": 180},
    {"field": "experiment"},
    {"field": "status", "cellClassRules": STATUS_RULES, "maxWidth": 130},
    {
        # The first step whose nodes or metrics went NaN/inf: a red cell, sortable
        # by the step number (runs that never diverged are empty).
        "field": "diverged_at_step",
        "headerName": "diverged",
        "filter": "agNumberColumnFilter",
        "cellClassRules": {"diverged": "params.value != null"},
        "valueFormatter": {"function": "params.value == null ? '' : 'at step ' + params.value"},
        "maxWidth": 140,
    },
    {"field": "started_at", "headerName": "started (UTC)", "sort": "desc", "minWidth": 170},
    {
        "field": "duration_s",
        "headerName": "duration",
        "filter": "agNumberColumnFilter",
        "valueFormatter": {"function": "params.data.duration"},  # display.duration's text
        "maxWidth": 130,
    },
    {"field": "steps", "filter": "agNumberColumnFilter", "maxWidth": 110},
    {
        "field": "metric.loss",
        "headerName": "final loss",
        "filter": "agNumberColumnFilter",
        "valueFormatter": {"function": "gtNumber(params.value)"},
        "maxWidth": 130,
    },
]


def empty_state() -> html.Section | None:
    """For a database without runs: the command that records one, to copy."""
    ctx = context_for()
    if len(ctx.store.runs()):
        return None
    command = f"gradtrace demo --db {ctx.title}"
    return card(
        "No runs yet",
        html.P("This database has no recorded runs. Record the demo into it:"),
        html.Pre(html.Code(command), id="runs-empty-command", className="copy"),
        dcc.Clipboard(target_id="runs-empty-command", title="copy", className="copy-btn"),
        html.P("then this page lists it within a few seconds."),
        id="runs-empty",
    )


def layout(**_: Any) -> html.Div:
    """The runs grid, its refresh timer and the comparison panel."""
    return html.Div(
        [
            empty_state(),
            card(
                "Runs",
                dag.AgGrid(
                    id="runs-grid",
                    rowData=[],
                    columnDefs=BASE_COLUMNS,
                    getRowId="params.data.id",
                    defaultColDef={
                        "sortable": True,
                        "filter": True,
                        "resizable": True,
                        "floatingFilter": True,
                        "minWidth": 100,
                    },
                    dashGridOptions={
                        "rowSelection": {"mode": "multiRow"},
                        "suppressFieldDotNotation": True,  # "config.lr" is one field
                        "enableCellTextSelection": True,
                    },
                    columnSize="autoSize",
                    style={"height": "380px"},
                ),
                note=html.Span(id="runs-count"),
            ),
            dcc.Interval(id="runs-timer", interval=REFRESH_MS),
            dcc.Store(id="runs-signature"),
            card(
                "Compare",
                html.Div(
                    id="runs-compare", children=message("Tick two or more runs to compare them.")
                ),
            ),
        ]
    )


def columns_for(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The base columns plus one per other metric and config key."""
    extra: list[dict[str, Any]] = []
    for c in runs.columns:
        if c.startswith("metric.") and c != "metric.loss":
            extra.append(
                {
                    "field": c,
                    "headerName": c[len("metric.") :],
                    "filter": "agNumberColumnFilter",
                    "valueFormatter": {"function": "gtNumber(params.value)"},
                }
            )
    for c in runs.columns:
        if c.startswith("config."):
            extra.append({"field": c, "headerName": c})
    return BASE_COLUMNS + extra


def register(app: Dash, ctx: AppContext) -> None:
    """Add the page and its callbacks to ``app``."""
    dash.register_page(__name__, path="/", name="Runs", title="gradtrace · runs", layout=layout)

    @app.callback(
        Output("runs-grid", "rowData"),
        Output("runs-grid", "columnDefs"),
        Output("runs-signature", "data"),
        Output("runs-count", "children"),
        Input("runs-timer", "n_intervals"),
        State("runs-signature", "data"),
    )
    def refresh(_n: int | None, signature: dict | None):
        """Re-read the runs; send them only when something changed."""
        stamp = ctx.store.change_stamp()  # index lookups: nothing is built when nothing changed
        if signature and signature.get("stamp") == stamp:
            raise PreventUpdate
        runs = ctx.store.runs()
        rows = runs_rows(runs)
        cols = columns_for(runs)
        digest = hashlib.sha1(json.dumps(rows, default=str).encode()).hexdigest()
        col_digest = hashlib.sha1(json.dumps(cols).encode()).hexdigest()
        new_signature = {"rows": digest, "cols": col_digest, "stamp": stamp}
        if signature and signature.get("rows") == digest:
            return no_update, no_update, new_signature, no_update
        same_cols = signature and signature.get("cols") == col_digest
        count = f"{len(rows)} run{'s' if len(rows) != 1 else ''}"
        return rows, (no_update if same_cols else cols), new_signature, count

    @app.callback(Output("runs-compare", "children"), Input("runs-grid", "selectedRows"))
    def compare(selected: list[dict] | None):
        """Overlaid loss curves and the config keys whose values differ."""
        if not selected:
            return message("Tick two or more runs to compare them.")
        ids = [r["id"] for r in selected]
        fig = figures.frame(
            height=320,
            title="loss",
            hovermode="closest",
            legend={"orientation": "h"},
            xaxis={"title": {"text": "step"}},
        )
        for rid in ids:
            rc = ctx.run(rid)
            metrics = rc.metrics()
            if "loss" in metrics:
                fig["data"].append(
                    figures.scatter(
                        len(metrics),
                        x=metrics.index.tolist(),
                        mode="lines",
                        y=figures.finite_list(metrics["loss"].to_numpy()),
                        name=plotly_text(f"{rc.view.name} ({rid[:8]})"),
                    )
                )
        runs = ctx.store.runs()
        runs = runs[runs["id"].isin(ids)].set_index("id").loc[ids].reset_index()
        diff = config_diff(runs)
        names = dict(zip(runs["id"], runs["name"], strict=True))
        if diff.empty:
            table: Any = message("These runs have the same config.")
        else:
            table = dag.AgGrid(
                id="runs-compare-diff",
                rowData=diff.astype(object).where(diff.notna(), None).to_dict("records"),
                columnDefs=[{"field": "key", "pinned": "left"}]
                + [{"field": rid, "headerName": f"{names[rid]} ({rid[:8]})"} for rid in ids],
                dashGridOptions={"suppressFieldDotNotation": True, "domLayout": "autoHeight"},
                columnSize="autoSize",
            )
        href = "/compare?runs=" + ",".join(ids)  # ids are hex: nothing to escape
        link = dcc.Link("Open on the compare page", href=href, id="runs-compare-link")
        return [
            link,
            dcc.Graph(id="runs-compare-loss", figure=fig),
            html.H4("config differences"),
            table,
        ]
