"""Run page, computation graph: a neighbourhood of the step's graph drawn with
cytoscape (a neuron's sub-graph for one training example, or the nodes around a
node id), the details of a clicked node, and every
node of the step in a server-side paged, sortable table."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_cytoscape as cyto
import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import graphs, graphview
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.nodetable import COLUMNS, page
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.run.picker import NeuronPicker, layer_options, neuron_options
from gradtrace.dashboard.run.replay import snap
from gradtrace.dashboard.run.wiring import each, js, of
from gradtrace.dashboard.ui import card, facts, message

PICKER = NeuronPicker("run-g")
GRID = "run-nodes"  # the node table


def _index_input(
    text: str, component_id: str, value: int | None = 0, placeholder: str | None = None
) -> html.Label:
    """A labelled whole-number box (a training example, a node index)."""
    return html.Label(
        [
            text,
            dcc.Input(
                id=component_id,
                type="number",
                min=0,
                step=1,
                value=value,
                placeholder=placeholder,
                debounce=True,
                className="num",
            ),
        ]
    )


def layout(meta: dict[str, Any], node: int | None = None) -> html.Section:
    """The graph controls, the cytoscape view, node details and the node table; one
    line saying why for a run without node traces. With ``node`` (from the URL) the
    graph opens around that node."""
    if not meta.get("traced"):
        return card(
            "Computation graph",
            message(
                f"No node traces: this run was recorded with capture={meta.get('capture')!r}, "
                "so there is no graph or node table to show (parameters are above).",
                id=ids.GRAPH_NONE,
            ),
        )
    return card(
        "Computation graph",
        html.Div(
            [
                dcc.RadioItems(
                    id=ids.GRAPH_MODE,
                    value="neuron" if node is None else "node",
                    inline=True,
                    options=[
                        {"label": " a neuron, one example", "value": "neuron"},
                        {"label": " around a node", "value": "node"},
                    ],
                ),
                *PICKER.layout(),
                _index_input("example ", "run-g-example", None, "busiest"),
                _index_input("node ", ids.GRAPH_NODE, 0 if node is None else node),
            ],
            className="controls",
        ),
        html.Div(id="run-g-note", className="card-note"),
        dcc.Store(id="run-g-drawn"),  # what the graph shows: {"key": [...], "step": traced}
        dcc.Store(id="run-nodes-step"),  # the traced step the node table's rows are of
        html.Div(
            [
                html.Span("colour: |grad| on a log scale, ", className="lbl"),
                html.Span("0", className="key-swatch key-zero"),
                html.Span("→", className="lbl"),
                html.Span("large", className="key-swatch key-large"),
                *(
                    html.Span(look.key, className=f"key-swatch key-{look.css}", style=look.swatch)
                    for kind, look in graphview.LEAVES.items()
                    if kind != "leaf"  # only graphs recorded before kinds: not worth a swatch
                ),
                html.Span("NaN/inf", className="key-swatch key-bad"),
                html.Span("focus", className="key-swatch key-focus"),
            ],
            className="colour-key",
            id="run-g-key",
        ),
        html.Div(
            [
                cyto.Cytoscape(
                    id=ids.GRAPH,
                    elements=[],
                    layout=graphview.LAYOUT,
                    stylesheet=graphview.STYLESHEET,
                    style={"width": "100%", "height": "440px"},
                    minZoom=0.2,
                    maxZoom=3,
                    boxSelectionEnabled=False,
                ),
                html.Div(
                    message("Click a node to see it."), id="run-g-detail", className="node-detail"
                ),
            ],
            className="graph-row",
        ),
        html.Details(
            [
                html.Summary(html.H4(id="run-nodes-title", className="inline")),
                dag.AgGrid(
                    id=GRID,
                    rowModelType="infinite",
                    columnDefs=COLUMNS,
                    defaultColDef={"sortable": True, "resizable": True, "filter": True},
                    dashGridOptions={
                        "cacheBlockSize": 100,
                        "maxBlocksInCache": 20,
                        "rowBuffer": 10,
                        "suppressFieldDotNotation": True,
                        "rowHeight": 30,
                    },
                    style={"height": "360px"},
                ),
            ],
            id="run-nodes-box",  # folded until opened: tens of thousands of rows
        ),
    )


def shown_nodes(
    rc: RunCache, step: int, mode: str, layer: Any, neuron: Any, example: Any, node: Any
) -> tuple[list[int], list[int], str, int | None, list[graphs.Folded]]:
    """The node ids to draw, those to highlight, a note about what is shown, the
    example picked when none was asked for, and the counts of nodes left out."""
    nodes, children = rc.nodes(step), rc.children(step)
    if mode == "node":
        center = int(node or 0)
        ops = nodes["op"].to_numpy(dtype=object)
        shown, folded = graphs.readable_neighbourhood(children, ops, center)
        left = sum(f.count for f in folded)
        return (
            shown,
            [center],
            f"node {center} and its neighbours within 2 hops ({len(shown)} drawn"
            + (f", {left} more folded into the dashed boxes)" if left else ")"),
            None,
            folded,
        )
    if layer is None or neuron is None:
        raise ValueError("pick a layer and a neuron")
    params = rc.parameters()
    how, picked = "", None
    if example is None or example == "":
        example = graphs.busiest_example(nodes, children, params, int(layer), int(neuron))
        how, picked = " (the one passing the most gradient)", example
    shown = graphs.neuron_subgraph(nodes, children, params, int(layer), int(neuron), int(example))
    return (
        shown,
        shown[:1],
        f"layer {layer} neuron {neuron}, training example {example}{how}: {len(shown)} nodes",
        picked,
        [],
    )


def node_detail(data: dict[str, Any], centred: bool = False) -> list[Any]:
    """The detail pane of a node from its cytoscape data."""
    return [
        html.H4(data.get("name", "")),
        facts(
            [
                ("node", data["id"]),
                ("op", data.get("op") or "none: a leaf"),
                *([("kind", data["kind"])] if data.get("kind") else []),
                ("value", data.get("value")),
                ("grad", data.get("grad")),
            ]
        ),
        html.Div(
            "The graph is centred on it; click another node to move."
            if centred
            else '"around a node" now centres on it.',
            className="card-note",
        ),
    ]


def busiest_neuron(rc: RunCache, layer: int, neurons: list[int]) -> int | None:
    """The neuron of ``layer`` whose parameters have the largest summed |gradient| at
    the last step (a dead neuron's graph is all zeros), else the first one."""
    if not neurons:
        return None
    steps = rc.step_list()
    grads = rc.param_row(int(steps[-1]), "grad") if len(steps) else None
    if grads is None:
        return neurons[0]
    params = rc.parameters()
    rows = params[params["layer"] == layer]
    mags = np.abs(np.nan_to_num(grads[rows["idx"].to_numpy(dtype=np.int64)], nan=0.0))
    totals = pd.Series(mags).groupby(rows["neuron"].to_numpy(dtype=np.int64)).sum()
    return int(totals.idxmax()) if totals.max() > 0 else neurons[0]


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        *of(Output, PICKER.layer, "options", "value"),
        Input(ids.META, "data"),
        State(ids.RUN_ID, "data"),
    )
    def setup(meta: dict | None, run_id: str | None):
        """Layer choices (the first NaN/inf is told at the top of the page)."""
        if not meta or not run_id:
            raise PreventUpdate
        options = layer_options(ctx.run(run_id).parameters())
        return options, (options[0]["value"] if options else None)

    @app.callback(
        *of(Output, PICKER.neuron, "options", "value"),
        Input(PICKER.layer, "value"),
        State(ids.RUN_ID, "data"),
    )
    def neurons(layer: int | None, run_id: str):
        """The layer's neurons; the one with the largest gradients is shown first."""
        if layer is None:
            raise PreventUpdate
        rc = ctx.run(run_id)
        options = neuron_options(rc.parameters(), layer)
        return options, busiest_neuron(rc, layer, [o["value"] for o in options])

    @app.callback(
        Output(ids.GRAPH, "elements"),
        Output("run-g-note", "children"),
        Output("run-g-example", "value"),
        Output("run-g-drawn", "data"),
        Output("run-g-detail", "children"),
        Input("run-nodes-step", "data"),
        *each(Input, "value", ids.GRAPH_MODE, PICKER.neuron, "run-g-example", ids.GRAPH_NODE),
        *each(State, "value", ids.SLIDER, PICKER.layer),
        *each(State, "data", ids.META, "run-g-drawn", ids.RUN_ID),
    )
    def draw(_traced, mode, neuron, example, node, value, layer, meta, drawn, run_id):
        """The chosen neighbourhood of the step's graph. Only every few steps are
        traced: the graph hears the slider through the traced step the browser
        picks for the node table (``refreshNodes``), so a slider move that stays on
        the same traced step asks the server nothing (and a new element list would
        re-run the browser's layout)."""
        if value is None or not meta or not run_id:
            raise PreventUpdate
        rc = ctx.run(run_id)
        step = rc.nearest_traced(snap(rc, value))
        key = [step, mode, neuron, example, node, layer]
        if drawn is not None and drawn.get("key") == key:
            raise PreventUpdate
        try:
            shown, focus, note, picked, folded = shown_nodes(
                rc, step, mode, layer, neuron, example, node
            )
        except ValueError as e:
            return [], str(e), no_update, {"key": key, "step": step}, no_update
        names = rc.parameters()["name"].tolist()
        center = focus[0] if mode == "node" else None  # selected, its detail shown
        elements = graphview.cyto_elements(
            rc.nodes(step), rc.children(step), shown, names, focus, folded, center
        )
        where = f"step {step}" if step == value else f"step {step} (nearest traced step)"
        if picked is not None:  # the box will hold the example: the redraw it causes is moot
            key[3] = picked
        # the picked example stays in the box, so replaying keeps to one example
        return (
            elements,
            f"{where}: {note}.",
            (no_update if picked is None else picked),
            {"key": key, "step": step},
            no_update if center is None else node_detail(elements[0]["data"], centred=True),
        )

    @app.callback(
        Output("run-g-detail", "children", allow_duplicate=True),
        Output(ids.GRAPH_NODE, "value"),
        Input(ids.GRAPH, "tapNodeData"),
        prevent_initial_call=True,
    )
    def detail(data: dict | None):
        """What a clicked node is; it becomes the centre of "around a node"."""
        if not data:
            raise PreventUpdate
        if "folded" in data:  # a count of nodes left out, not a node
            return [
                html.H4(data["label"].replace("\n", " ")),
                html.Div(
                    f"Left out to keep the graph readable: click node {data['of']} to centre "
                    "on it, or find them all in the node table below.",
                    className="card-note",
                ),
            ], no_update
        return node_detail(data), int(data["id"])

    @app.callback(
        Output(GRID, "getRowsResponse"),
        Output("run-nodes-title", "children"),
        Input(GRID, "getRowsRequest"),
        State(ids.SLIDER, "value"),
        State(ids.META, "data"),
        State(ids.RUN_ID, "data"),
    )
    def rows(request: dict | None, value: int | None, meta: dict | None, run_id: str | None):
        """One block of the node table, sorted and filtered on the server."""
        if value is None or not meta or not meta["traced"] or not run_id:
            raise PreventUpdate
        rc = ctx.run(run_id)
        step = rc.nearest_traced(snap(rc, value))
        request = request or {"startRow": 0, "endRow": 100}
        names = rc.parameters()["name"].tolist()
        data, count = page(rc, step, request, names)
        title = f"every node of step {step} ({count} shown)"
        return {"rowData": data, "rowCount": count}, title

    js(
        app,
        "narrowLayout",
        Output(ids.GRAPH, "layout"),
        Input(ids.META, "data"),
        State(ids.GRAPH, "layout"),
        initial=True,
    )

    # A slider move to another traced step: the grid drops its loaded blocks and asks
    # for them again at once, beside the graph's request (a move within the same
    # traced step leaves it alone).
    js(
        app,
        "refreshNodes",
        Output("run-nodes-step", "data"),
        Input(ids.SLIDER, "value"),
        State("run-nodes-step", "data"),
        State(ids.META, "data"),
        State(GRID, "id"),
        initial=True,
    )
