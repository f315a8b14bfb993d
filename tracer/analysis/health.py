"""Training health, computed from what a run recorded: dead and saturated units per
layer, and the weights that stopped learning.

>>> from gradtrace.tracer.analysis import health
>>> run = tracer.connect("runs.db").run("moons")          # doctest: +SKIP
>>> health.units(run, step=99)                             # doctest: +SKIP
   layer  neuron activation  examples  zero  saturated   dead
0      0       0       relu       100    37          0  False
...
>>> health.layers(run)                                     # doctest: +SKIP
>>> health.stalled(run, last=50, threshold=1e-3)           # doctest: +SKIP

Definitions (one place, so every surface counts the same way):

- a unit is a neuron's activation node (``relu``, ``tanh``, ``sigmoid``) in one
  step's traced graph, found as the activation whose input is ``... + w * x``
  with ``w`` a watched parameter (the engine's ``Neuron`` builds exactly that);
- a ReLU neuron is **dead** at a step when its output is 0 for every example;
- a tanh/sigmoid output is **saturated** when ``|t| > 0.97`` (sigmoid: ``|2s - 1|``);
- a weight is **stalled** when both its ``|grad|`` and its ``|update|`` stayed
  below ``threshold`` over the last ``last`` logged steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SATURATED = 0.97
# The ops that end a neuron: the engine's Neuron applies relu or tanh (its
# ``nn.ACTIVATIONS`` also name "linear", which adds no node); sigmoid ends hand-built ones.
ACTIVATION_OPS = ("relu", "tanh", "sigmoid")

UNIT_COLUMNS = ["layer", "neuron", "activation", "examples", "zero", "saturated", "dead"]
LAYER_COLUMNS = ["step", "layer", "activation", "neurons", "dead", "dead_fraction", "saturated"]
STALLED_COLUMNS = ["idx", "name", "layer", "neuron", "max_abs_grad", "max_abs_update", "stalled"]


def unit_nodes(nodes: pd.DataFrame, parameters: pd.DataFrame) -> pd.DataFrame:
    """The activation nodes of a step's graph that belong to a neuron: columns
    ``node, layer, neuron, activation, value`` (one row per neuron and example)."""
    op = nodes["op"].to_numpy(dtype=object)
    act = np.flatnonzero(np.isin(op, ACTIVATION_OPS))
    a = nodes["a"].to_numpy(dtype="float64", na_value=np.nan)
    b = nodes["b"].to_numpy(dtype="float64", na_value=np.nan)
    param = nodes["param"].to_numpy(dtype="float64", na_value=np.nan)
    pre = a[act]  # the activation's input: b + w0*x0 + ... + wk*xk
    ok = np.isfinite(pre)
    act, pre = act[ok], pre[ok].astype(np.int64)
    ok = op[pre] == "+"
    act, pre = act[ok], pre[ok]
    last = b[pre]  # its last term, wk * xk
    ok = np.isfinite(last)
    act, last = act[ok], last[ok].astype(np.int64)
    ok = op[last] == "*"
    act, last = act[ok], last[ok]
    w = a[last]  # wk, a watched parameter's node
    ok = np.isfinite(w)
    act, w = act[ok], w[ok].astype(np.int64)
    idx = param[w]
    ok = np.isfinite(idx)
    act, idx = act[ok], idx[ok].astype(np.int64)
    by_idx = parameters.set_index("idx")
    layer = by_idx["layer"].reindex(idx).to_numpy(dtype="float64", na_value=np.nan)
    neuron = by_idx["neuron"].reindex(idx).to_numpy(dtype="float64", na_value=np.nan)
    ok = np.isfinite(layer) & np.isfinite(neuron)
    return pd.DataFrame(
        {
            "node": act[ok],
            "layer": layer[ok].astype(np.int64),
            "neuron": neuron[ok].astype(np.int64),
            "activation": op[act[ok]],
            "value": nodes["value"].to_numpy(dtype=np.float64)[act[ok]],
        }
    )


def units(run: Any, step: int) -> pd.DataFrame:
    """Per neuron at a traced ``step``: ``layer, neuron, activation, examples`` (how
    many outputs it produced), ``zero`` (outputs exactly 0), ``saturated`` (outputs
    with ``|t| > 0.97``), ``dead`` (a ReLU whose every output is 0)."""
    u = unit_nodes(run.nodes(step), run.parameters())
    if u.empty:
        return pd.DataFrame(columns=UNIT_COLUMNS)
    v = u["value"].to_numpy()
    squash = np.where(u["activation"].to_numpy() == "sigmoid", 2 * v - 1, v)
    u = u.assign(
        zero=(v == 0.0).astype(np.int64),
        saturated=((np.abs(squash) > SATURATED) & (u["activation"] != "relu")).astype(np.int64),
    )
    out = (
        u.groupby(["layer", "neuron", "activation"], sort=True)
        .agg(examples=("value", "size"), zero=("zero", "sum"), saturated=("saturated", "sum"))
        .reset_index()
    )
    out["dead"] = (out["activation"] == "relu") & (out["zero"] == out["examples"])
    return out[UNIT_COLUMNS]


def layers(run: Any, steps: list[int] | None = None) -> pd.DataFrame:
    """Per traced step and layer: ``neurons``, ``dead`` (dead ReLU neurons),
    ``dead_fraction`` and ``saturated`` (the fraction of tanh/sigmoid outputs with
    ``|t| > 0.97``). ``steps`` defaults to every traced step."""
    rows = []
    for step in run.traced_steps() if steps is None else steps:
        u = units(run, int(step))
        for (layer, activation), g in u.groupby(["layer", "activation"], sort=True):
            outputs = int(g["examples"].sum())
            rows.append(
                {
                    "step": int(step),
                    "layer": int(layer),
                    "activation": activation,
                    "neurons": len(g),
                    "dead": int(g["dead"].sum()),
                    "dead_fraction": float(g["dead"].mean()),
                    "saturated": float(g["saturated"].sum() / outputs) if outputs else 0.0,
                }
            )
    return pd.DataFrame(rows, columns=LAYER_COLUMNS)


def stalled(run: Any, last: int = 50, threshold: float = 1e-3) -> pd.DataFrame:
    """Per parameter over the last ``last`` logged steps: ``max_abs_grad``,
    ``max_abs_update`` (the largest change of its value between two of those
    steps) and ``stalled`` (both below ``threshold``); stalled rows first."""
    if last < 2:
        raise ValueError(f"last must be at least 2 steps, got {last}")
    params = run.parameters()
    steps = run.metrics().index[-last:].tolist()  # one row per logged step
    data = run.param_arrays(steps=steps, which="data")
    grads = run.param_arrays(steps=steps, which="grad")
    if data.empty:
        return pd.DataFrame(columns=STALLED_COLUMNS)
    with np.errstate(invalid="ignore"):
        g = np.nanmax(np.abs(grads.to_numpy(dtype=np.float64)), axis=0)
        d = data.to_numpy(dtype=np.float64)
        step = np.nanmax(np.abs(np.diff(d, axis=0)), axis=0) if len(d) > 1 else np.zeros(d.shape[1])
    out = params[["idx", "name", "layer", "neuron"]].copy()
    out["max_abs_grad"] = g
    out["max_abs_update"] = step
    out["stalled"] = (g < threshold) & (step < threshold)
    return out.sort_values(["stalled", "max_abs_grad"], ascending=[False, True]).reset_index(
        drop=True
    )[STALLED_COLUMNS]
