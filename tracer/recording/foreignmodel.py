"""The parameters of a model of the user's own micrograd-style Values: names and roles.

    >>> from micrograd.nn import MLP                        # doctest: +SKIP
    >>> named, roles = named_parameters(MLP(2, [3, 1]))     # doctest: +SKIP
    >>> named[1][0], roles[1].kind, roles[1].input          # doctest: +SKIP
    ('layers.0.neurons.0.w.1', 'weight', 1)

Names follow the model's attributes, breadth first (micrograd's and the lecture's
``layers[0].neurons[0].w[1]`` is ``layers.0.neurons.0.w.1``), and the roles are
read from those names as the engine's MLP gives them; a list, or a parameter no
attribute reaches, is named by its position (``p0``, ``p1``...). Used by
``Recorder.watch`` for anything that is not an engine ``Module``.
"""

from __future__ import annotations

import re
from typing import Any

from gradtrace.engine import Role, Value
from gradtrace.tracer.errors import InvalidArgument
from gradtrace.tracer.validate import NAME_MAX, shown, value_like

_WHAT = (
    "an object whose parameters() returns micrograd-style Values (with .data, .grad, "
    "._prev and ._op), or a list of them"
)


def named_parameters(model: Any) -> tuple[list[tuple[str, Any]], list[Role]]:
    """``(name, parameter)`` pairs and roles of a model or list that is not an engine Module.

    Names follow the model's attributes (micrograd's ``layers[0].neurons[0].w[1]``
    is ``layers.0.neurons.0.w.1``); a list, or a model whose attributes do not
    hold every parameter, gives ``p0``, ``p1``... for those it cannot name.
    """
    if model is None or isinstance(model, str | bytes | int | float | complex | bool | dict):
        raise InvalidArgument(f"watch(): model = {shown(model)} is {_a(model)}; pass {_WHAT}")
    if callable(getattr(model, "parameters", None)):
        params = model.parameters()
        source = "model.parameters()"
    elif isinstance(model, list | tuple):
        params, source = model, "the list"
    else:
        raise InvalidArgument(
            f"watch(): model = {shown(model)} is {_a(model)} with no parameters() method; "
            f"pass {_WHAT}"
        )
    try:
        params = list(params)
    except TypeError:
        raise InvalidArgument(
            f"watch(): {source} returned {_a(params)}, not a list; pass {_WHAT}"
        ) from None
    if not params:
        raise InvalidArgument(f"watch(): {source} holds no parameters; pass {_WHAT}")
    first: dict[int, int] = {}
    for i, p in enumerate(params):
        if not (type(p) is Value or value_like(p)):
            raise InvalidArgument(
                f"watch(): {source}[{i}] = {shown(p)} is {_a(p)}, not a Value; pass {_WHAT}"
            )
        j = first.setdefault(id(p), i)
        if j != i:
            raise InvalidArgument(
                f"watch(): {source} holds the same parameter at {j} and {i}; "
                "list each parameter once (a shared weight is one parameter)"
            )
    found = {} if isinstance(model, list | tuple) else _attribute_names(model, first)
    names = [found.get(id(p)) or f"p{i}" for i, p in enumerate(params)]
    if len(set(names)) != len(names) or any(len(n) > NAME_MAX for n in names):
        names = [f"p{i}" for i in range(len(params))]
    return list(zip(names, params)), [role(n) for n in names]


def model_spec(model: Any) -> dict[str, Any] | None:
    """What a run stores of a model of foreign Values: its class, marked ``"foreign"``
    (``verify`` reads the mark), or None for a list of gradtrace's own Values.

        >>> model_spec([Value(1.0)]) is None
        True
    """
    params = list(model.parameters()) if callable(getattr(model, "parameters", None)) else model
    if all(type(p) is Value for p in params):
        return None
    cls = type(model)
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "engine": "foreign"}


def _a(x: Any) -> str:
    name = type(x).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


MAX_DEPTH = 12  # attribute levels searched for parameters (micrograd's are 4 deep)


def _attribute_names(model: Any, wanted: dict[int, int]) -> dict[int, str]:
    """id(parameter) -> the attribute path that reaches it first, breadth first."""
    found: dict[int, str] = {}
    seen = {id(model)}
    level: list[tuple[str, Any]] = [("", model)]
    for _ in range(MAX_DEPTH):
        below: list[tuple[str, Any]] = []
        for path, obj in level:
            for name, child in _children(obj):
                where = f"{path}.{name}" if path else name
                i = id(child)
                if i in wanted:
                    found.setdefault(i, where)
                elif i not in seen and not value_like(child):
                    seen.add(i)
                    below.append((where, child))
        if not below or len(found) == len(wanted):
            break
        level = below
    return found


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, list | tuple):
        return [(str(i), x) for i, x in enumerate(obj)]
    if isinstance(obj, dict):
        return [(k, x) for k, x in obj.items() if isinstance(k, str)]
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict) or isinstance(obj, type):
        return []
    return [(k, x) for k, x in attrs.items() if not k.startswith("_")]


_ROLE = re.compile(r"(?:^|\.)(?:layers|layer)\.(\d+)|(?:^|\.)(?:neurons|neuron)\.(\d+)")


def role(name: str) -> Role:
    """A parameter's role read from its name, as the engine's MLP gives it.

    >>> r = role("layers.1.neurons.3.w.0"); r.group, r.layer, r.neuron, r.kind, r.input
    ('layer 1', 1, 3, 'weight', 0)
    """
    layer = neuron = None
    for m in _ROLE.finditer(name):
        if m.group(1) is not None and layer is None:
            layer = int(m.group(1))
        if m.group(2) is not None and neuron is None:
            neuron = int(m.group(2))
    parts = name.split(".")
    kind, index = "other", None
    if len(parts) >= 2 and parts[-2] in ("w", "weight", "weights") and parts[-1].isdigit():
        kind, index = "weight", int(parts[-1])
    elif parts[-1] in ("b", "bias"):
        kind = "bias"
    group = f"layer {layer}" if layer is not None else (name.rpartition(".")[0] or "parameters")
    return Role(name, group, layer, neuron, kind, index)
