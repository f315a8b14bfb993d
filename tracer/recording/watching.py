"""What ``run.watch(model)`` records of a model: its parameters' names and roles,
and the model's and the optimizer's specs.

    >>> from gradtrace.engine import MLP
    >>> named, roles = watched(MLP(2, [3, 1], seed=0))
    >>> named[0][0], roles[0].kind, roles[0].layer
    ('layers.0.neurons.0.w.0', 'weight', 0)

An engine ``Module`` names its parameters (``named_parameters()``) and knows their
roles; any other model is read as the user's own micrograd-style Values
(``recording/foreignmodel.py``: names from its attributes, else ``p0..pn``).
"""

from __future__ import annotations

from typing import Any

from gradtrace.engine import Module, Role, Value
from gradtrace.tracer.errors import ConfigError
from gradtrace.tracer.recording import foreign
from gradtrace.tracer.validate import check, shown


def watched(model: Any) -> tuple[list[tuple[str, Any]], list[Role]]:
    """The model's parameters with their names, and their roles; every name checked,
    each parameter once."""
    if hasattr(model, "named_parameters"):
        named = list(model.named_parameters())
        if not named or not all(isinstance(p, Value) for _, p in named):
            raise ConfigError("watch() takes a model with Value parameters or a list of Values")
        roles = parameter_roles(model, [n for n, _ in named])
    else:  # a list, or a model of the user's own micrograd-style Values
        named, roles = foreign.named_parameters(model)
    for n, _ in named:
        check("parameter name", n)
    _no_twice(named)
    return named, roles


def parameter_roles(model: Any, names: list[str]) -> list[Role]:
    """The model's own roles when it is an engine Module, else one group named from the names."""
    if isinstance(model, Module):
        roles = model.parameter_roles()
        if [r.name for r in roles] == names:
            return roles
    return [Role(n, n.rpartition(".")[0] or "parameters") for n in names]


def parameter_rows(run_key: int, roles: list[Role]) -> list[dict[str, Any]]:
    """The ``parameters`` table's rows of a run: one a parameter, in watch order."""
    return [
        {
            "run_key": run_key,
            "idx": i,
            "name": role.name,
            "param_group": role.group,
            "layer": role.layer,
            "neuron": role.neuron,
            "kind": role.kind,
            "input_index": role.input,
        }
        for i, role in enumerate(roles)
    ]


def model_specs(model: Any, optimizer: Any) -> dict[str, Any]:
    """The run's ``model`` and ``optimizer`` columns: their ``spec()``, a foreign
    model's structure, nothing for what has neither."""
    specs = {
        "model": model.spec() if hasattr(model, "spec") else foreign.model_spec(model),
        "optimizer": optimizer.spec() if hasattr(optimizer, "spec") else None,
    }
    return {k: v for k, v in specs.items() if v is not None}


def _no_twice(named: list[tuple[str, Value]]) -> None:
    """Each parameter once, under one name: its updates would be recorded twice,
    or two parameters could not be told apart by name."""
    names: dict[str, int] = {}
    seen: dict[int, str] = {}
    for name, p in named:
        if id(p) in seen:
            raise ConfigError(
                f"watch() got the same Value twice (as {shown(seen[id(p)])} and {shown(name)}); "
                "pass each parameter once"
            )
        if name in names:
            raise ConfigError(
                f"parameter name {shown(name)} is given to two parameters; "
                "name each parameter once (named_parameters() must not repeat a name)"
            )
        seen[id(p)], names[name] = name, 1
