"""How the run page's files declare callbacks, each dependency named once and on as
few lines as it reads well:

    js(app, "urlView", Output(ids.URL, "data"), Input(ids.SLIDER, "value"))
    app.callback(*of(Output, ids.SLIDER, "min", "max"), Input(ids.LIVE_BELOW, "data"))
"""

from __future__ import annotations

from typing import Any

from dash import ClientsideFunction, Dash, Input, State
from gradtrace.dashboard.run import ids


def js(app: Dash, function: str, *deps: Any, initial: bool = False) -> None:
    """Register ``function`` of ``assets/run.js`` (its ``run`` namespace) as a clientside
    callback of ``deps`` (Outputs, Inputs, then States, as Dash takes them). It is not
    called when its inputs first appear unless ``initial``."""
    app.clientside_callback(
        ClientsideFunction("run", function), *deps, prevent_initial_call=not initial
    )


def of(kind: type, component: Any, *props: str) -> list[Any]:
    """Several properties of one component as Outputs, Inputs or States (``kind``):
    ``of(State, "run-slider", "value", "max")`` is
    ``[State("run-slider", "value"), State("run-slider", "max")]``."""
    return [kind(component, prop) for prop in props]


def each(kind: type, prop: str, *components: Any) -> list[Any]:
    """One property of several components as Outputs, Inputs or States (``kind``):
    ``each(Output, "figure", "a", "b")`` is ``[Output("a", "figure"), Output("b", "figure")]``."""
    return [kind(component, prop) for component in components]


def below(*inputs: Any) -> list[Any]:
    """The dependencies of a chart below the curves, after its own ``inputs``: it is
    redrawn on the live poll's news (a running run grows), and reads the run's id and
    the replayed step (which it marks)."""
    return [*inputs, Input(ids.LIVE_BELOW, "data"), *each(State, "data", ids.RUN_ID, ids.STEP)]
