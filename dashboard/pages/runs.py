"""The runs page (``/``): every recorded run in a sortable, filterable grid that
refreshes itself; tick several runs to overlay their loss curves and see the
config keys they differ in. A run's name links to its page.

The view lives in the address: ``/?q=moons&sort=-metric.loss&sel=<id>,<id>&filter=<json>``
(search text, sort column with ``-`` for descending, ticked runs, column filters),
written as it changes (dashboard/assets/runs.js) and read back here, so Back and a
shared link show the same list.
"""

from __future__ import annotations

import hashlib
import json
import math
from numbers import Real
from typing import Any

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures
from gradtrace.dashboard.comparefigs import run_colours
from gradtrace.dashboard.context import AppContext, context_for
from gradtrace.dashboard.figures import plotly_text
from gradtrace.dashboard.rows import cell, config_diff
from gradtrace.dashboard.ui import card, message
from gradtrace.tracer.display import duration

REFRESH_MS = 3000
STATUS_RULES = {
    f"status-{s}": f"params.value === '{s}' && params.data.diverged_at_step == null"
    for s in ("running", "finished", "failed", "interrupted", "terminated", "crashed")
}
# A diverged run's status says so, in red, whatever its lifecycle status.
STATUS_RULES["diverged"] = "params.data && params.data.diverged_at_step != null"
NUMBER = {
    "filter": "agNumberColumnFilter",
    "cellDataType": "number",
    "valueFormatter": {"function": "gtNumber(params.value)"},
    "filterValueGetter": {"function": "gtNum(params.data[params.colDef.field])"},
    "comparator": {"function": "gtCompare"},
    "cellClassRules": {"cell-nonfinite": "params.value === 'NaN' || params.value === 'inf'"},
}
BASE_COLUMNS: list[dict[str, Any]] = [
    {"field": "name", "cellRenderer": "RunLink", "minWidth": 150, "pinned": "left"},
    {"field": "experiment"},
    {
        "field": "status",
        "cellClassRules": STATUS_RULES,
        "valueFormatter": {
            "function": "params.value + (params.data && params.data.diverged_at_step != null"
            " ? ' · diverged' : '')"
        },
        "minWidth": 110,
    },
    {
        # The first step whose nodes or metrics went NaN/inf: a red cell, sortable
        # by the step number (runs that never diverged are empty, and sort last).
        "field": "diverged_at_step",
        "headerName": "diverged",
        "filter": "agNumberColumnFilter",
        "comparator": {"function": "gtCompare"},
        "cellClassRules": {"diverged": "params.value != null"},
        "valueFormatter": {"function": "params.value == null ? '' : 'at step ' + params.value"},
        "maxWidth": 140,
    },
    {"field": "started_at", "headerName": "started (UTC)", "minWidth": 170},
    {
        "field": "duration_s",
        "headerName": "duration",
        "filter": "agNumberColumnFilter",
        "valueFormatter": {"function": "params.data.duration"},  # display.duration's text
        "maxWidth": 130,
    },
    {"field": "steps", "filter": "agNumberColumnFilter", "maxWidth": 110},
    {"field": "metric.loss", "headerName": "final loss", **NUMBER, "maxWidth": 130},
]
# What a phone shows (runs.js hides the other columns below 700 px).
PHONE_FIELDS = ["name", "status", "diverged_at_step", "metric.loss"]
GRID_OPTIONS = {
    "rowSelection": {"mode": "multiRow"},
    "suppressFieldDotNotation": True,  # "config.lr" is one field
    "enableCellTextSelection": True,
    "selectionColumnDef": {"width": 40, "minWidth": 40, "maxWidth": 40},  # just the tick
}


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


def url_state(
    q: str | None = None, sort: str | None = None, sel: str | None = None, filter: str | None = None
) -> dict[str, Any]:
    """The list's view from the query string; anything unreadable is left out.

    >>> url_state(q="moons", sort="-metric.loss", sel="ab12,cd34", filter="{}")
    {'q': 'moons', 'sort': '-metric.loss', 'sel': ['ab12', 'cd34'], 'filter': {}}
    """
    try:
        model = json.loads(filter) if filter else {}
    except ValueError:
        model = {}
    return {
        "q": q or "",
        "sort": sort or "-started_at",
        "sel": [s for s in (sel or "").split(",") if s],
        "filter": model if isinstance(model, dict) else {},
    }


def layout(
    q: str | None = None,
    sort: str | None = None,
    sel: str | None = None,
    filter: str | None = None,
    **_: Any,
) -> html.Div:
    """The runs grid, its search box, refresh timer and the comparison panel."""
    state = url_state(q, sort, sel, filter)
    return html.Div(
        [
            empty_state(),
            card(
                "Runs",
                dcc.Input(
                    id="runs-search",
                    type="search",
                    value=state["q"],
                    placeholder="search runs: name, status, config…",
                    debounce=0.3,
                    className="runs-search",
                ),
                dag.AgGrid(
                    id="runs-grid",
                    rowData=[],
                    columnDefs=[],
                    getRowId="params.data.id",
                    defaultColDef={
                        "sortable": True,
                        "filter": True,
                        "resizable": True,
                        "floatingFilter": True,
                        "minWidth": 90,
                    },
                    dashGridOptions={**GRID_OPTIONS, "quickFilterText": state["q"]},
                    filterModel=state["filter"],
                    columnSize="autoSize",
                    className="ag-theme-alpine runs-grid",
                    style={},  # the height comes from style.css: the grid fills the page
                ),
                note=html.Span(id="runs-count"),
                id="runs-card",
            ),
            dcc.Interval(id="runs-timer", interval=REFRESH_MS),
            dcc.Store(id="runs-signature"),
            dcc.Store(id="runs-columns"),
            dcc.Store(id="runs-url", data=state),
            dcc.Store(id="runs-url-written"),
            card(
                "Compare",
                html.Div(
                    id="runs-compare", children=message("Tick two or more runs to compare them.")
                ),
            ),
        ],
        className="runs-page",
    )


def is_number(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def columns_for(runs: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """The base columns plus one per other metric and config key, and the config
    columns shown as text: a key holding anything but numbers in some run is text in
    every run (a typed column would say "Invalid Number" for the odd ones)."""
    extra: list[dict[str, Any]] = []
    for c in runs.columns:
        if c.startswith("metric.") and c != "metric.loss":
            extra.append({"field": c, "headerName": c[len("metric.") :], **NUMBER})
    text: list[str] = []
    for c in runs.columns:
        if not c.startswith("config."):
            continue
        values = [v for v in runs[c].tolist() if not _missing(v)]
        if values and all(is_number(v) for v in values):
            extra.append({"field": c, "headerName": c, **NUMBER})
        else:
            text.append(c)
            extra.append({"field": c, "headerName": c, "cellDataType": "text"})
    return BASE_COLUMNS + extra, text


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def grid_rows(runs: pd.DataFrame, text: list[str]) -> list[dict[str, Any]]:
    """``Store.runs()`` as JSON-safe grid rows: timestamps as UTC text, text columns
    as text, and a diverged run's NaN metric as ``"NaN"`` (JSON has no NaN; for a run
    that never went non-finite a NaN there only means the metric was not logged)."""
    text_cols = set(text)
    rows = []
    for row in runs.to_dict("records"):
        diverged = not _missing(row.get("diverged_at_step"))
        out = {}
        for k, v in row.items():
            if k in text_cols:
                shown = cell(v)
                out[k] = shown if shown is None or isinstance(shown, str) else json.dumps(shown)
            elif k.startswith("metric.") and isinstance(v, float) and math.isnan(v):
                out[k] = "NaN" if diverged else None
            else:
                out[k] = cell(v)
        out["duration"] = duration(out.get("duration_s"))  # as the command line writes it
        rows.append(out)
    return rows


def register(app: Dash, ctx: AppContext) -> None:
    """Add the page and its callbacks to ``app``."""
    dash.register_page(__name__, path="/", name="Runs", title="gradtrace · runs", layout=layout)

    @app.callback(
        Output("runs-grid", "rowData"),
        Output("runs-columns", "data"),
        Output("runs-signature", "data"),
        Output("runs-grid", "selectedRows"),
        Input("runs-timer", "n_intervals"),
        State("runs-signature", "data"),
        State("runs-url", "data"),
    )
    def refresh(_n: int | None, signature: dict | None, url: dict | None):
        """Re-read the runs; send them only when something changed (the first time
        with the address's ticked runs)."""
        stamp = ctx.store.change_stamp()  # index lookups: nothing is built when nothing changed
        if signature and signature.get("stamp") == stamp:
            raise PreventUpdate
        runs = ctx.store.runs()
        cols, text = columns_for(runs)
        rows = grid_rows(runs, text)
        digest = hashlib.sha1(json.dumps(rows, default=str).encode()).hexdigest()
        col_digest = hashlib.sha1(json.dumps(cols).encode()).hexdigest()
        new_signature = {"rows": digest, "cols": col_digest, "stamp": stamp}
        if signature and signature.get("rows") == digest:
            return no_update, no_update, new_signature, no_update
        same_cols = signature and signature.get("cols") == col_digest
        ticked = no_update
        if not signature and url and url.get("sel"):
            ticked = {"ids": [r["id"] for r in rows if r["id"] in set(url["sel"])]}
        return rows, (no_update if same_cols else cols), new_signature, ticked

    # Browser-side: columns for the screen, the count after filtering, the address.
    for name, outputs, inputs in (
        (
            "columns",
            [Output("runs-grid", "columnDefs"), Output("runs-grid", "columnSize")],
            [Input("runs-columns", "data"), State("runs-url", "data")],
        ),
        (
            "count",
            Output("runs-count", "children"),
            [Input("runs-grid", "virtualRowData"), Input("runs-grid", "rowData")],
        ),
        (
            "search",
            Output("runs-grid", "dashGridOptions"),
            [Input("runs-search", "value"), State("runs-grid", "dashGridOptions")],
        ),
        (
            "address",
            Output("runs-url-written", "data"),
            [
                Input("runs-grid", "columnState"),
                Input("runs-grid", "filterModel"),
                Input("runs-grid", "selectedRows"),
                Input("runs-search", "value"),
                State("runs-url", "data"),
            ],
        ),
    ):
        app.clientside_callback(
            ClientsideFunction("gtRuns", name),
            outputs,
            *inputs,
            prevent_initial_call=name == "search",
        )

    @app.callback(Output("runs-compare", "children"), Input("runs-grid", "selectedRows"))
    def compare(selected: list[dict] | None):
        """Overlaid loss curves and the config keys whose values differ."""
        if not selected:
            return message("Tick two or more runs to compare them.")
        ids = [r["id"] for r in selected]
        runs = ctx.store.runs()
        colours = run_colours(ids, by_age=runs["id"].tolist()[::-1])
        fig = figures.frame(
            height=320,
            title="loss",
            hovermode="closest",
            legend={"orientation": "h", "y": -0.25},
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
                        line={"color": colours[rid]},
                    )
                )
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
            dcc.Graph(id="runs-compare-loss", figure=fig, config={"displaylogo": False}),
            html.H4("config differences"),
            table,
        ]
