"""A small neural-network library on top of :class:`Value`, shaped like micrograd's.

    >>> model = MLP(2, [16, 16, 1], seed=1337)
    >>> score = model([0.5, -1.0])
    >>> len(model.parameters())
    337
    >>> model.named_parameters()[0][0]
    'layers.0.neurons.0.w.0'

Parameters are labelled with their names, so a drawn graph or a recorded run
shows ``layers.0.neurons.3.w.1`` rather than an anonymous number.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from gradtrace.engine.ops import OP_TABLE
from gradtrace.engine.value import Number, Value

ACTIVATIONS = ("relu", "tanh", "linear")


@dataclass(frozen=True)
class Role:
    """Where a parameter sits in its model: what a recorder stores beside its name.

    >>> MLP(2, [3, 1], seed=0).parameter_roles()[1]
    Role(name='layers.0.neurons.0.w.1', group='layer 0', layer=0, neuron=0, kind='weight', input=1)
    """

    name: str
    group: str  # what a dashboard plots together: "layer 0", or the name's prefix
    layer: int | None = None
    neuron: int | None = None
    kind: str = "other"  # weight | bias | other
    input: int | None = None  # a weight's input index


def _group(name: str) -> str:
    return name.rpartition(".")[0] or "parameters"


class Module:
    """Base class: anything that owns parameters."""

    def named_parameters(self) -> list[tuple[str, Value]]:
        """``(name, parameter)`` pairs in a fixed order; names are stable across runs."""
        return []

    def parameter_roles(self) -> list[Role]:
        """One :class:`Role` per parameter, in ``parameters()`` order.

        Modules that know their structure (``Neuron``, ``Layer``, ``MLP``) say
        which layer, neuron and input each parameter belongs to; any other module
        groups its parameters by the prefix of their names.
        """
        return [Role(name, _group(name)) for name, _ in self.named_parameters()]

    def parameters(self) -> list[Value]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def load_parameters(self, values: Sequence[float]) -> None:
        """Set every parameter's data, in ``parameters()`` order (e.g. from a recorded step)."""
        params = self.parameters()
        if len(values) != len(params):
            raise ValueError(
                f"{type(self).__name__} has {len(params)} parameters, got {len(values)} values"
            )
        for p, x in zip(params, values):
            p.data = float(x)


def _prefixed(prefix: str, children: Sequence[Module]) -> list[tuple[str, Value]]:
    return [
        (f"{prefix}.{i}.{name}", p)
        for i, child in enumerate(children)
        for name, p in child.named_parameters()
    ]


def _prefixed_roles(prefix: str, children: Sequence[Module], field: str) -> list[Role]:
    """The children's roles, renamed under ``prefix.i.`` with ``field`` (layer/neuron) = i."""
    return [
        replace(role, name=f"{prefix}.{i}.{role.name}", group=f"{field} {i}", **{field: i})
        for i, child in enumerate(children)
        for role in child.parameter_roles()
    ]


class Neuron(Module):
    """``act(w . x + b)``; weights drawn from U(-1, 1), bias 0, as in micrograd."""

    def __init__(self, nin: int, activation: str = "relu", rng: random.Random | None = None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        rng = rng or random.Random()
        self.w = [Value(rng.uniform(-1.0, 1.0), kind="parameter") for _ in range(nin)]
        self.b = Value(0.0, kind="parameter")
        self.activation = activation

    def __call__(self, x: Sequence[Value | Number]) -> Value:
        # Starting the sum at b gives micrograd's exact graph: ((b + w0*x0) + w1*x1) + ...
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        if self.activation == "relu":
            return act.relu()
        if self.activation == "tanh":
            return act.tanh()
        return act

    def predict(self, x: Sequence[float]) -> float:
        """The same function on plain floats, without building a graph."""
        act = self.b.data
        for wi, xi in zip(self.w, x):
            act += wi.data * xi
        if self.activation == "linear":
            return act
        return OP_TABLE[self.activation].forward(act, None)  # the op __call__ applies

    def named_parameters(self) -> list[tuple[str, Value]]:
        return [(f"w.{i}", w) for i, w in enumerate(self.w)] + [("b", self.b)]

    def parameter_roles(self) -> list[Role]:
        weights = [Role(f"w.{i}", "neuron", kind="weight", input=i) for i in range(len(self.w))]
        return [*weights, Role("b", "neuron", kind="bias")]

    def __repr__(self) -> str:
        return f"{self.activation.capitalize()}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons reading the same inputs."""

    def __init__(
        self, nin: int, nout: int, activation: str = "relu", rng: random.Random | None = None
    ):
        rng = rng or random.Random()
        self.neurons = [Neuron(nin, activation, rng) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def predict(self, x: Sequence[float]) -> float | list[float]:
        out = [n.predict(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def named_parameters(self) -> list[tuple[str, Value]]:
        return _prefixed("neurons", self.neurons)

    def parameter_roles(self) -> list[Role]:
        return _prefixed_roles("neurons", self.neurons, "neuron")

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(map(repr, self.neurons))}]"


class MLP(Module):
    """A multi-layer perceptron with a linear last layer, as in micrograd.

    ``seed`` makes the initial weights reproducible: ``MLP(2, [16, 16, 1], seed=1)``
    built twice holds the same numbers.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str = "relu",
        seed: int | None = None,
    ):
        if activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
        if nin < 1 or not nouts or any(n < 1 for n in nouts):
            raise ValueError(f"layer sizes must be positive, got nin={nin}, nouts={list(nouts)}")
        self.nin, self.nouts, self.activation, self.seed = nin, list(nouts), activation, seed
        rng = random.Random(seed)
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], activation if i != last else "linear", rng)
            for i in range(len(nouts))
        ]
        for name, p in self.named_parameters():
            p.label = name

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def predict(self, x: Sequence[float]) -> float | list[float]:
        """Evaluate on plain floats with the current weights; no graph is built."""
        out: Any = list(x)
        for layer in self.layers:
            out = layer.predict(out if isinstance(out, list) else [out])
        return out

    def named_parameters(self) -> list[tuple[str, Value]]:
        return _prefixed("layers", self.layers)

    def parameter_roles(self) -> list[Role]:
        return _prefixed_roles("layers", self.layers, "layer")

    def spec(self) -> dict[str, Any]:
        """A JSON-able description from which :meth:`from_spec` rebuilds the model."""
        return {
            "type": "MLP",
            "nin": self.nin,
            "nouts": self.nouts,
            "activation": self.activation,
            "seed": self.seed,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> MLP:
        if spec.get("type") != "MLP":
            raise ValueError(f"not an MLP spec: {spec!r}")
        return cls(spec["nin"], spec["nouts"], spec.get("activation", "relu"), spec.get("seed"))

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(map(repr, self.layers))}]"
