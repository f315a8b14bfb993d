"""The layer → neuron picker: two dropdowns, built once here for every section of
the run page that picks a neuron (the weights section, the graph).

    >>> picker = NeuronPicker("run-w")        # ids run-w-layer, run-w-neuron
    >>> picker.layout()                        # doctest: +SKIP

A section fills them from its own callback (what it shows first differs: the
liveliest weight, the busiest neuron) with ``layer_options``/``neuron_options``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from dash import dcc


@dataclass(frozen=True)
class NeuronPicker:
    """A layer dropdown and a neuron dropdown with ids ``<prefix>-layer`` and
    ``<prefix>-neuron``."""

    prefix: str

    @property
    def layer(self) -> str:
        return f"{self.prefix}-layer"

    @property
    def neuron(self) -> str:
        return f"{self.prefix}-neuron"

    def layout(self) -> list[dcc.Dropdown]:
        """The two dropdowns, empty until the section's callback fills them."""
        return [
            dcc.Dropdown(id=self.layer, placeholder="layer", clearable=False, className="pick"),
            dcc.Dropdown(id=self.neuron, placeholder="neuron", clearable=False, className="pick"),
        ]


def layer_options(parameters: pd.DataFrame) -> list[dict[str, Any]]:
    """Dropdown options for the layers of a run's parameters."""
    layers = sorted(int(x) for x in parameters["layer"].dropna().unique())
    return [{"label": f"layer {x}", "value": x} for x in layers]


def neuron_options(parameters: pd.DataFrame, layer: int | None) -> list[dict[str, Any]]:
    """Dropdown options for the neurons of ``layer``."""
    if layer is None:
        return []
    rows = parameters[parameters["layer"] == layer]
    neurons = sorted(int(x) for x in rows["neuron"].dropna().unique())
    return [{"label": f"neuron {x}", "value": x} for x in neurons]
