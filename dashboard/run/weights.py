"""Run page, weights and gradients: pick weights by layer, neuron and name to see
their value, gradient and update per step; a neurons x steps heatmap of |gradient|
(click a row to plot that neuron's weights). The update-to-data ratio is in ``health``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate
from gradtrace.dashboard import figures
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.groups import neuron_groups, neuron_label, neuron_of
from gradtrace.dashboard.run import ids
from gradtrace.dashboard.run.picker import NeuronPicker, layer_options, neuron_options
from gradtrace.dashboard.run.wiring import below, each, js, of
from gradtrace.dashboard.series import downsample
from gradtrace.dashboard.ui import card, chart

PICKER = NeuronPicker("run-w")


def layout(picked: list[str] | None = None) -> html.Section:
    """The weight pickers (on ``picked``, from the URL, when given), the history
    and the heatmap."""
    return card(
        "Weights and gradients",
        html.Div(
            [
                *PICKER.layout(),
                dcc.Dropdown(
                    id=ids.WEIGHTS,
                    placeholder="weights",
                    multi=True,
                    # The value's own options from the start: Dash 4's dropdown mounted on
                    # values it has no option for lost them on the next click.
                    options=[{"label": n, "value": n} for n in picked or []],
                    value=picked or [],
                    className="pick-wide",
                ),
            ],
            className="controls",
        ),
        chart(ids.W_HISTORY, 520),
        chart(ids.W_HEATMAP, 520),
        dcc.Store(id=ids.FOCUS),  # a neuron picked elsewhere (the health section's list)
        id=ids.WEIGHTS_SECTION,
    )


def param_options(
    rc: RunCache, layer: int | None, neuron: int | None, keep: list[str]
) -> list[dict[str, str]]:
    """The neuron's parameters, plus the ones already picked elsewhere."""
    params = rc.parameters()
    if layer is not None and neuron is not None:
        rows = params[(params["layer"] == layer) & (params["neuron"] == neuron)]
    else:
        rows = params
    names = rows["name"].tolist()
    names += [k for k in keep if k not in names]
    return [{"label": n, "value": n} for n in names]


def first_weight(rc: RunCache, layer: int | None, neuron: int | None) -> list[str]:
    """The first parameter of a neuron, as a picker value."""
    options = param_options(rc, layer, neuron, [])
    return [options[0]["value"]] if options else []


def focus(rc: RunCache, name: str) -> tuple[Any, ...]:
    """Picker outputs (layer, neuron options and value, weight options and value)
    that show the weight ``name``."""
    params = rc.parameters()
    row = params[params["name"] == name].iloc[0]
    layer = None if pd.isna(row["layer"]) else int(row["layer"])
    neuron = None if pd.isna(row["neuron"]) else int(row["neuron"])
    return (
        layer,
        neuron_options(params, layer),
        neuron,
        param_options(rc, layer, neuron, [name]),
        [name],
    )


def liveliest(rc: RunCache) -> str:
    """The weight to show first: the largest |gradient| at the last step (a dead
    neuron's flat lines make a poor first view)."""
    names = rc.parameters()["name"].tolist()
    steps = rc.step_list()
    grads = rc.param_row(int(steps[-1]), "grad") if len(steps) else None
    if grads is None or not np.isfinite(grads).any():
        return names[0]
    return names[int(np.nanargmax(np.where(np.isfinite(grads), np.abs(grads), np.nan)))]


def sampled_steps(rc: RunCache) -> list[int]:
    """At most 300 of the run's steps, evenly spread."""
    return downsample(rc.step_list())


def heatmap(rc: RunCache) -> Any:
    """Summed |gradient| of every neuron's parameters at <= 300 sampled steps."""
    steps = sampled_steps(rc)
    grads = np.abs(rc.view.param_arrays(steps=steps, which="grad").to_numpy(dtype=np.float64))
    groups = neuron_groups(rc.parameters())
    mags = np.array([grads[:, idx].sum(axis=1) for idx in groups.values()])
    labels = [neuron_label(*key) for key in groups]
    return figures.heatmap_figure(mags, steps, labels)


def register(app: Dash, ctx: AppContext) -> None:
    """Add this section's callbacks to ``app``."""

    @app.callback(
        *of(Output, PICKER.layer, "options", "value"),
        *of(Output, PICKER.neuron, "options", "value"),
        *of(Output, ids.WEIGHTS, "options", "value"),
        Input(ids.META, "data"),
        *each(Input, "value", PICKER.layer, PICKER.neuron),
        Input(ids.W_HEATMAP, "clickData"),
        Input(ids.STALLED, "selectedRows"),
        Input(ids.FOCUS, "data"),
        State(ids.WEIGHTS, "value"),
        State(ids.RUN_ID, "data"),
    )
    def pickers(
        meta: dict | None,
        layer: int | None,
        neuron: int | None,
        click: dict | None,
        stalled: list[dict] | None,
        asked: dict | None,
        picked: list[str] | None,
        run_id: str | None,
    ):
        """Layer -> neuron -> weight pickers; a heatmap click or a neuron picked in
        the health section's list picks a neuron's weights, a stalled row adds that
        weight (its neuron picked)."""
        if not meta or not run_id:
            raise PreventUpdate
        rc = ctx.run(run_id)
        params = rc.parameters()
        picked = picked or []
        trigger = dash_ctx.triggered_id
        if trigger == ids.STALLED:
            name = (stalled or [{}])[0].get("name")
            if name not in set(params["name"]):
                raise PreventUpdate
            layer, neurons, neuron, _, _ = focus(rc, name)
            value = [*[p for p in picked if p != name], name]
            return no_update, layer, neurons, neuron, param_options(rc, layer, neuron, value), value
        if trigger in (ids.W_HEATMAP, ids.FOCUS):
            if trigger == ids.FOCUS:
                hit = (asked["layer"], asked["neuron"]) if asked else None
            else:
                hit = neuron_of((click or {}).get("points", [{}])[0].get("y"))
            if hit is None:
                raise PreventUpdate
            names = param_options(rc, hit[0], hit[1], [])
            return (
                no_update,
                hit[0],
                neuron_options(params, hit[0]),
                hit[1],
                names,
                [o["value"] for o in names],
            )
        if trigger == PICKER.neuron:
            value = first_weight(rc, layer, neuron)
            return (*[no_update] * 4, param_options(rc, layer, neuron, value), value)
        if trigger == PICKER.layer:
            neurons = neuron_options(params, layer)
            neu = neurons[0]["value"] if neurons else None
            value = first_weight(rc, layer, neu)
            return no_update, no_update, neurons, neu, param_options(rc, layer, neu, value), value
        known = [n for n in picked if n in set(params["name"])]
        if not known:  # nothing asked for (or only unknown names): the liveliest weight
            return (layer_options(params), *focus(rc, liveliest(rc)))
        # the URL's weights: the pickers on the first one's neuron, all of them kept
        layer, neurons, neuron, _, _ = focus(rc, known[0])
        options = param_options(rc, layer, neuron, known)
        return layer_options(params), layer, neurons, neuron, options, known

    @app.callback(Output(ids.W_HISTORY, "figure"), *below(Input(ids.WEIGHTS, "value")))
    def history(names: list[str] | None, _shown: dict | None, run_id: str, step: int | None):
        """Value, gradient and update per step of the picked weights (one range read
        each), the replay step marked."""
        if not run_id:
            raise PreventUpdate
        if not names:
            return figures.empty("pick a weight to see its value, gradient and update per step")
        rc = ctx.run(run_id)
        return figures.with_marker(figures.history_figure(rc.updates(list(names))), step)

    @app.callback(Output(ids.W_HEATMAP, "figure"), *below(Input(ids.META, "data")))
    def grad_heatmap(meta: dict | None, _shown: dict | None, run_id: str, step: int | None):
        """Parameters x sampled steps of gradients (kept once the run has ended)."""
        if not meta or not run_id:
            raise PreventUpdate
        return figures.with_marker(ctx.run(run_id).once("heatmap", heatmap), step)

    # a stalled weight picked in the health section: the weights come into view
    js(app, "scrollTo", Input(ids.STALLED, "selectedRows"), State(ids.WEIGHTS_SECTION, "id"))
