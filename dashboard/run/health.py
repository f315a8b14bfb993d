"""Run page, training health: is any part of the net dead or saturated, are the
updates the right size, which weights stopped learning. Computed by
``gradtrace.tracer.report.health`` from what the run recorded; the stalled-weights table
picks a weight for the weights section on a click."""

from __future__ import annotations

import dash_ag_grid as dag
import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, html
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.groups import layer_groups
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.series import downsample
from gradtrace.dashboard.ui import card, chart
from gradtrace.tracer.report import health

MAX_TRACED = 24  # traced steps read for the unit counts (each is a whole graph)
STALLED_LAST = 50
STALLED_BELOW = 1e-3


def layout() -> html.Section:
    """The health figures and the stalled-weights table (filled by callbacks)."""
    return card(
        "Training health",
        html.Div(id="run-h-flags", className="card-note"),
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
        rc.view, last=min(STALLED_LAST, max(len(rc.step_list()), 2)), threshold=STALLED_BELOW
    )


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        Output(ids.H_UNITS, "figure"),
        Output(ids.H_RATIO, "figure"),
        Output(ids.H_GRADNORM, "figure"),
        Output(ids.STALLED, "rowData"),
        Output("run-h-stalled-title", "children"),
        Output("run-h-flags", "children"),
        Output(ids.SUM_HEALTH, "children"),
        Input(ids.META, "data"),
        Input(ids.LIVE_BELOW, "data"),
        State(ids.RUN_ID, "data"),
        State(ids.STEP, "data"),
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
        last = min(STALLED_LAST, len(rc.step_list()))
        title = (
            f"stalled weights: {len(stalled)} of {len(table)} with |grad| and |update| < "
            f"{STALLED_BELOW:g} over the last {last} steps (click one to plot it)"
        )
        dead = _dead_now(rc) if meta.get("traced") else None
        flags = [f"{len(stalled)} stalled weights"]
        if dead is not None:
            flags.insert(0, f"{dead} dead ReLU neurons at the last traced step")
        links = [
            html.A(f"{len(stalled)} stalled", href="#run-h-stalled-title", id="run-sum-stalled")
        ]
        if dead is not None:
            links.insert(0, html.A(f"{dead} dead", href="#run-h-units", id="run-sum-dead"))
            links.insert(1, " · ")
        units, ratio, norms = (figures.with_marker(f, step) for f in (units, ratio, norms))
        return units, ratio, norms, rows, title, " · ".join(flags), links

    # a click on a stalled row picks that weight: weights.register (its pickers follow)


def _dead_now(rc: RunCache) -> int | None:
    traced = rc.traced()
    if not len(traced):
        return None
    step = int(traced[-1])
    return int(rc.cache.get(("h-dead", step), lambda: health.units(rc.view, step)["dead"].sum()))
