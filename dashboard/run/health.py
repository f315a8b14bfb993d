"""Run page, training health: which neurons are dead or saturated and since when,
are the updates the right size, which weights stopped learning; and the header's
health badge. Computed by ``gradtrace.tracer.report.health`` (and ``onset``) from
what the run recorded; a neuron or a stalled weight picks its weights for the
weights section on a click.

    >>> verdict(diverged=True, dead=2, saturated=0, stalled=6)   # doctest: +SKIP
    ('diverged · 2 dead · 0 saturated · 6 stalled', 'health-bad')
"""

from __future__ import annotations

import dash_ag_grid as dag
import numpy as np
import pandas as pd
from dash import ALL, Dash, Input, Output, State, dcc, html
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.groups import layer_groups
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.run.summary import onset_of
from gradtrace.dashboard.run.wiring import below, each, js
from gradtrace.dashboard.series import downsample
from gradtrace.dashboard.ui import card, chart, message
from gradtrace.tracer.display import number
from gradtrace.tracer.report import health

MAX_TRACED = 24  # traced steps read for the unit counts (each is a whole graph)
STALLED_LAST = 50
STALLED_RATIO = 1e-2
MAX_LISTED = 40  # neurons listed by name; run.health() has them all
NEURON = "run-h-neuron"  # type of the pattern-matching ids of the "weights →" buttons


def layout() -> html.Section:
    """The health figures and the stalled-weights table (filled by callbacks)."""
    return card(
        "Training health",
        html.Div(id="run-h-flags", className="card-note"),
        html.Div(id="run-h-neurons", className="neuron-list"),
        # an output for the browser's scroll to the weights (a callback without one
        # makes Dash 4 check every callback's inputs, some not mounted yet)
        dcc.Store(id="run-h-scrolled"),
        html.Div(
            [
                chart(ids.H_UNITS, 260),
                chart(ids.H_RATIO, 260),
            ],
            className="grid-2",
        ),
        html.Div(
            [
                chart(ids.H_GRADNORM, 260),
                html.Div(
                    [
                        html.H4(id="run-h-stalled-title"),
                        dag.AgGrid(
                            id=ids.STALLED,
                            rowData=[],
                            columnDefs=[
                                {"field": "name", "minWidth": 220},
                                {
                                    "field": "max_abs_grad",
                                    "headerName": "max |grad|",
                                    "minWidth": 110,
                                    "valueFormatter": {"function": "gtNumber(params.value)"},
                                },
                                {
                                    "field": "max_abs_update",
                                    "headerName": "max |update|",
                                    "minWidth": 120,
                                    "valueFormatter": {"function": "gtNumber(params.value)"},
                                },
                            ],
                            defaultColDef={"sortable": True, "resizable": True, "flex": 1},
                            # a click on a row picks it (AG Grid's default is
                            # checkboxes only): weights.register plots that weight
                            dashGridOptions={
                                "rowSelection": {
                                    "mode": "singleRow",
                                    "checkboxes": False,
                                    "enableClickSelection": True,
                                }
                            },
                            style={"height": "230px"},
                        ),
                    ]
                ),
            ],
            className="grid-2",
        ),
        id="run-health",
    )


def unit_series(rc: RunCache) -> dict[str, tuple[list[int], np.ndarray]]:
    """Dead-ReLU and saturated fractions per layer at <= MAX_TRACED traced steps."""
    steps = downsample(rc.traced(), MAX_TRACED)
    if not steps:
        return {}
    table = health.layers(rc.view, steps=steps)
    out: dict[str, tuple[list[int], np.ndarray]] = {}
    for (layer, act), g in table.groupby(["layer", "activation"], sort=True):
        column = "dead_fraction" if act == "relu" else "saturated"
        label = "dead" if act == "relu" else "saturated"
        out[f"layer {layer} {label}"] = (g["step"].tolist(), g[column].to_numpy())
    return out


def ratio_series(rc: RunCache) -> dict[str, tuple[list[int], np.ndarray]]:
    """|Δw| / |w| per layer at <= 300 sampled steps (Δw: to the next logged step)."""
    steps = rc.step_list()
    if len(steps) < 2:
        return {}
    picks = downsample(steps[:-1])
    nxt = steps[np.searchsorted(steps, picks) + 1].tolist()
    wanted = sorted(set(picks) | set(nxt))
    data = rc.view.param_arrays(steps=wanted, which="data")
    have = [(s, t) for s, t in zip(picks, nxt, strict=True) if s in data.index and t in data.index]
    if not have:
        return {}
    before = data.loc[[s for s, _ in have]].to_numpy(dtype=np.float64)
    after = data.loc[[t for _, t in have]].to_numpy(dtype=np.float64)
    x = [s for s, _ in have]
    out = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for name, idx in layer_groups(rc.parameters()).items():
            num = np.linalg.norm(after[:, idx] - before[:, idx], axis=1)
            den = np.linalg.norm(before[:, idx], axis=1)
            out[name] = (x, num / den)
    return out


def gradnorm_series(rc: RunCache) -> dict[str, tuple[list[int], np.ndarray]]:
    """The gradient's L2 norm per layer at <= 300 sampled steps."""
    steps = downsample(rc.step_list())
    if not steps:
        return {}
    grads = rc.view.param_arrays(steps=steps, which="grad")
    g = grads.to_numpy(dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return {
            name: (grads.index.tolist(), np.linalg.norm(g[:, idx], axis=1))
            for name, idx in layer_groups(rc.parameters()).items()
        }


def stalled_table(rc: RunCache) -> pd.DataFrame:
    """The weights stalled over the last steps (``tracer.report.health.stalled``)."""
    return health.stalled(
        rc.view, last=min(STALLED_LAST, max(len(rc.step_list()), 2)), ratio=STALLED_RATIO
    )


def neuron_table(rc: RunCache) -> pd.DataFrame:
    """Every neuron's state at the last traced step and since when (``health.neurons``)."""
    return health.neurons(rc.view)


def verdict(diverged: bool, dead: int | None, saturated: int | None, stalled: int) -> tuple:
    """The badge's words and class: red when the run diverged or a neuron is dead or
    saturated, amber when weights stalled, green otherwise."""
    words = ["diverged"] if diverged else []
    if dead is not None:
        words += [f"{dead} dead", f"{saturated} saturated"]
    words.append(f"{stalled} stalled")
    if diverged or dead or saturated:
        return " · ".join(words), "health-bad"
    if stalled:
        return " · ".join(words), "health-warn"
    return "healthy · " + " · ".join(words), "health-ok"


def badge(text: str, cls: str) -> html.A:
    """The header's health badge, a link down to the named neurons."""
    return html.A(text, href="#run-health", className=f"badge {cls}", id="run-sum-badge")


def neuron_list(table: pd.DataFrame, step: int | None) -> list:
    """The dead and saturated neurons by layer and neuron, the step they died and a
    button to their weights; one line when there are none."""
    bad = table[table["state"] != "ok"]
    if bad.empty:
        where = f" at step {step}, the last traced step" if step is not None else ""
        return [message(f"No dead or saturated neuron{where}.", id="run-h-neurons-none")]
    rows = []
    for r in bad.head(MAX_LISTED).itertuples():
        layer, neuron = int(r.layer), int(r.neuron)
        if r.state == "dead":
            how = f"{r.activation} output 0 for all {r.examples} examples"
        else:
            how = f"{r.activation} |out| > {health.SATURATED:g} for all {r.examples} examples"
        rows.append(
            html.Tr(
                [
                    html.Td(f"layer {layer} · neuron {neuron}", className="neuron-name"),
                    html.Td(r.state, className=f"neuron-{r.state}"),
                    html.Td(f"since step {int(r.since)}"),
                    html.Td(how, className="neuron-how"),
                    html.Td(
                        html.Button(
                            "weights →",
                            id={"type": NEURON, "layer": layer, "neuron": neuron},
                            className="btn btn-small",
                            title=f"plot the weights of layer {layer} neuron {neuron}",
                        )
                    ),
                ]
            )
        )
    more = len(bad) - MAX_LISTED
    counts = bad["state"].value_counts()
    head = " and ".join(f"{counts[k]} {k}" for k in ("dead", "saturated") if k in counts)
    out: list = [
        html.H4(f"{head} at step {step} (the last traced step)", id="run-h-neurons-title"),
        html.Div(html.Table(html.Tbody(rows), className="neuron-table"), className="scroll-x"),
    ]
    if more > 0:
        out.append(html.Div(f"and {more} more: run.health() lists them all", className="card-note"))
    return out


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        *each(Output, "figure", ids.H_UNITS, ids.H_RATIO, ids.H_GRADNORM),
        Output(ids.STALLED, "rowData"),
        *each(Output, "children", "run-h-stalled-title", "run-h-flags", ids.SUM_HEALTH),
        Output("run-h-neurons", "children"),
        *below(Input(ids.META, "data")),
    )
    def draw(meta: dict | None, _live: dict | None, run_id: str | None, step: int | None):
        """Every health figure and the stalled table (kept once the run has ended)."""
        if not meta or not run_id:
            raise PreventUpdate
        rc = ctx.run(run_id)
        if meta.get("traced"):
            units = figures.layer_lines(
                "dead ReLUs and saturated tanh, fraction per layer",
                rc.once("h-units", unit_series),
                "fraction",
            )
        else:
            units = figures.empty(
                f"no node traces (capture={meta.get('capture')!r}): dead and saturated "
                "units need the activations",
                height=120,
            )
        ratio = figures.layer_lines(
            "update / data ratio |Δw| / |w| (guide: 1e-3)",
            rc.once("h-ratio", ratio_series),
            "ratio",
            log=True,
            guide=1e-3,
        )
        norms = figures.layer_lines(
            "gradient norm per layer", rc.once("h-gradnorm", gradnorm_series), "‖grad‖", log=True
        )
        table = rc.once("h-stalled", stalled_table)
        stalled = table[table["stalled"]]
        rows = [
            {
                "name": r.name,
                "max_abs_grad": float(r.max_abs_grad),
                "max_abs_update": float(r.max_abs_update),
            }
            for r in stalled.itertuples()
        ]
        scale = table.attrs.get("grad_scale")
        title = (
            f"stalled weights: {len(stalled)} of {len(table)} whose |grad| and |update| stayed "
            f"below {STALLED_RATIO:g} x the run's median (|grad| {number(scale, 2)}) over the "
            f"last {table.attrs.get('last', 0)} steps (click one to plot it)"
        )
        diverged = rc.first_nonfinite() is not None
        dead = saturated = None
        listed: list = [
            message(
                "No node traces: dead and saturated neurons need the activations.",
                id="run-h-neurons-none",
            )
        ]
        if meta.get("traced"):
            neurons = rc.once("h-neurons", neuron_table)
            dead = int((neurons["state"] == "dead").sum())
            saturated = int((neurons["state"] == "saturated").sum())
            listed = neuron_list(neurons, int(rc.traced()[-1]))
        flags = [f"{len(stalled)} stalled weights"]
        if dead is not None:
            flags.insert(0, f"{dead} dead, {saturated} saturated neurons at the last traced step")
        went = onset_of(rc)
        if went is not None:
            flags.insert(0, went.story)
        text, cls = verdict(diverged, dead, saturated, len(stalled))
        units, ratio, norms = (figures.with_marker(f, step) for f in (units, ratio, norms))
        return units, ratio, norms, rows, title, " · ".join(flags), badge(text, cls), listed

    js(
        app,
        "toWeights",
        Output("run-h-scrolled", "data"),
        Input(ids.FOCUS, "data"),
        State(ids.W_HISTORY, "id"),
    )

    @app.callback(
        Output(ids.FOCUS, "data"),
        Input({"type": NEURON, "layer": ALL, "neuron": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def to_weights(clicks: list[int | None]):
        """A neuron's "weights →": the weights section shows that neuron's weights."""
        hit = dash_ctx.triggered_id
        if not hit or not any(clicks or []):
            raise PreventUpdate
        return {"layer": hit["layer"], "neuron": hit["neuron"]}

    # a click on a stalled row picks that weight: weights.register (its pickers follow)
