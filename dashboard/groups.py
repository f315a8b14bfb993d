"""Parameter groups of a run: its layers and neurons (as the model grouped them at
``watch()``), the heatmap's row labels, and a histogram of one group's values.

>>> neuron_of(neuron_label(1, 4))
(1, 4)
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def layer_groups(parameters: pd.DataFrame) -> dict[str, np.ndarray]:
    """Group label -> the parameter indices in it, as the model grouped them at watch()
    ("layer 0", "layer 1", ... for an MLP; a name prefix for other models)."""
    groups: dict[str, np.ndarray] = {}
    for group, rows in parameters.groupby("group", sort=False):
        groups[str(group)] = rows["idx"].to_numpy(int)
    return groups


def neuron_groups(parameters: pd.DataFrame) -> dict[tuple[int, int], np.ndarray]:
    """(layer, neuron) -> the indices of its parameters (weights and bias)."""
    rows = parameters.dropna(subset=["layer", "neuron"])
    return {
        (int(layer), int(neuron)): g["idx"].to_numpy(dtype=np.int64)
        for (layer, neuron), g in rows.groupby(["layer", "neuron"], sort=True)
    }


def neuron_label(layer: int, neuron: int) -> str:
    """The heatmap's row label of a neuron; ``neuron_of`` reads it back."""
    return f"L{layer} n{neuron}"


def neuron_of(label: str) -> tuple[int, int] | None:
    """``"L0 n6"`` -> ``(0, 6)``; None for anything else."""
    parts = str(label).split()
    if len(parts) != 2 or not parts[0].startswith("L") or not parts[1].startswith("n"):
        return None
    try:
        return int(parts[0][1:]), int(parts[1][1:])
    except ValueError:
        return None


def histogram(values: np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray, int]:
    """Counts of the finite values in ``bins`` equal bins: (centers, counts, non-finite)."""
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    bad = len(x) - len(finite)
    if not len(finite):
        return np.array([]), np.array([]), bad
    # Binned in units of the largest magnitude: values near the float limit would
    # overflow the range (hi - lo = inf) or leave bins narrower than a float's step.
    scale = float(np.max(np.abs(finite))) or 1.0
    unit = finite / scale
    lo, hi = float(unit.min()), float(unit.max())
    if hi - lo < 1e-9:  # one value (to float precision): a bin of width 1 around it
        pad = max(0.5 / scale, 1e-6)
        lo, hi = lo - pad, hi + pad
    counts, edges = np.histogram(unit, bins=bins, range=(lo, hi))
    return (edges[:-1] + edges[1:]) / 2 * scale, counts, bad
