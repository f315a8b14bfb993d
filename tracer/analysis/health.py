"""Training health, computed from what a run recorded: dead and saturated units per
layer, and the weights that stopped learning.

>>> from gradtrace.tracer.analysis import health
>>> run = tracer.connect("runs.db").run("moons")          # doctest: +SKIP
>>> health.units(run, step=99)                             # doctest: +SKIP
   layer  neuron activation  examples  zero  saturated   dead
0      0       0       relu       100    37          0  False
...
>>> health.layers(run)                                     # doctest: +SKIP
>>> health.neurons(run).query("state != 'ok'")             # doctest: +SKIP
   layer  neuron activation state  since  examples  zero  saturated
3      0       3       relu  dead     12       100   100          0
>>> health.stalled(run, last=50, ratio=1e-2)               # doctest: +SKIP

Definitions (one place, so every surface counts the same way):

- a unit is a neuron's activation node (``relu``, ``tanh``, ``sigmoid``) in one
  step's traced graph, found as the activation whose input is ``... + w * x``
  with ``w`` a watched parameter (the engine's ``Neuron`` builds exactly that);
- a ReLU neuron is **dead** at a step when its output is 0 for every example;
- a tanh/sigmoid output is **saturated** when ``|t| > 0.97`` (sigmoid: ``|2s - 1|``),
  and a tanh/sigmoid neuron is saturated at a step when every output of it is
  (like a dead ReLU, it then passes almost no gradient for any example);
- a neuron died (or saturated) at the first traced step **since** which it stayed
  dead (saturated) up to the last traced step;
- a weight is **stalled** when both its ``|grad|`` and its ``|update|`` stayed
  below ``ratio`` times the run's own scale (the median over the parameters of
  their largest ``|grad|``, resp. ``|update|``) over the last ``last`` logged
  steps: a converged run, whose gradients all shrank together, is not flagged;
  a weight that stopped while the others learn is.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.tracer.errors import InvalidArgument

SATURATED = 0.97
# The ops that end a neuron: the engine's Neuron applies relu or tanh (its
# ``nn.ACTIVATIONS`` also name "linear", which adds no node); sigmoid ends hand-built ones.
ACTIVATION_OPS = ("relu", "tanh", "sigmoid")

UNIT_COLUMNS = ["layer", "neuron", "activation", "examples", "zero", "saturated", "dead"]
NEURON_COLUMNS = [
    "layer", "neuron", "activation", "state", "since", "examples", "zero", "saturated",
]  # fmt: skip
SAMPLES = 24  # traced steps read before bisecting for the step a neuron died
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


def state_of(u: pd.DataFrame) -> pd.Series:
    """``"dead"``, ``"saturated"`` or ``"ok"`` per row of a :func:`units` table."""
    whole = (u["activation"] != "relu") & (u["saturated"] == u["examples"])
    return pd.Series(np.where(u["dead"], "dead", np.where(whole, "saturated", "ok")), index=u.index)


def neurons(run: Any, samples: int = SAMPLES) -> pd.DataFrame:
    """Every neuron at the last traced step: ``layer, neuron, activation``, its
    ``state`` there (``dead``, ``saturated`` or ``ok``), ``since`` (the traced step
    from which it stayed in that state; NA when ok) and the counts of :func:`units`.

        >>> health.neurons(run).query("state == 'dead'")    # doctest: +SKIP

    Reads at most ``samples`` traced steps spread over the run, then bisects
    between the last sample where the neuron was fine and the first of the samples
    where it stayed dead: exact when every traced step is sampled, otherwise when
    the neuron did not come back to life and die again between two samples."""
    if not (isinstance(samples, int) and samples >= 2):
        raise InvalidArgument(f"samples={samples!r}: pass a whole number of steps, at least 2")
    traced = [int(s) for s in run.traced_steps()]
    if not traced:
        return pd.DataFrame(columns=NEURON_COLUMNS)
    seen: dict[int, pd.Series] = {}

    def states(pos: int) -> pd.Series:
        if pos not in seen:
            u = units(run, traced[pos])
            seen[pos] = pd.Series(
                state_of(u).to_numpy(), index=pd.MultiIndex.from_frame(u[["layer", "neuron"]])
            )
        return seen[pos]

    end = units(run, traced[-1]).copy()
    end["state"] = state_of(end)
    seen[len(traced) - 1] = pd.Series(
        end["state"].to_numpy(), index=pd.MultiIndex.from_frame(end[["layer", "neuron"]])
    )
    picks = np.unique(np.linspace(0, len(traced) - 1, max(samples, 2)).round().astype(int))
    since: list[Any] = []
    for layer, neuron, state in end[["layer", "neuron", "state"]].itertuples(index=False):
        if state == "ok":
            since.append(pd.NA)
            continue
        key = (layer, neuron)

        def holds(pos: int, key=key, state=state) -> bool:
            return states(pos).get(key) == state

        hi = next((int(p) for p in picks[::-1] if not holds(int(p))), None)
        if hi is None:  # in that state at every sample: since the first traced step
            since.append(traced[0])
            continue
        lo, hi = hi, int(picks[np.searchsorted(picks, hi) + 1])
        while hi - lo > 1:  # lo: not in the state; hi: in it
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if holds(mid) else (mid, hi)
        since.append(traced[hi])
    end["since"] = pd.array(since, dtype="Int64")
    return end[NEURON_COLUMNS].reset_index(drop=True)


def stalled(run: Any, last: int = 50, ratio: float = 1e-2) -> pd.DataFrame:
    """Per parameter over the last ``last`` logged steps: ``max_abs_grad``,
    ``max_abs_update`` (the largest change of its value between two of those
    steps) and ``stalled`` (both below ``ratio`` times the median of that column
    over every parameter: the run's own scale); stalled rows first.

        >>> health.stalled(run).query("stalled")["name"]    # doctest: +SKIP

    ``.attrs["grad_scale"]`` and ``.attrs["update_scale"]`` hold the two medians."""
    if not (isinstance(last, int) and last >= 2):
        raise InvalidArgument(f"last={last!r}: pass a whole number of steps, at least 2")
    if not (isinstance(ratio, (int, float)) and 0 < ratio < 1):
        raise InvalidArgument(
            f"ratio={ratio!r}: pass a fraction of the run's scale between 0 and 1, e.g. 1e-2"
        )
    params = run.parameters()
    steps = run.metrics().index[-last:].tolist()  # one row per logged step
    data = run.param_arrays(steps=steps, which="data")
    grads = run.param_arrays(steps=steps, which="grad")
    if data.empty:
        return pd.DataFrame(columns=STALLED_COLUMNS)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, not stalled
        g = np.nanmax(np.abs(grads.to_numpy(dtype=np.float64)), axis=0)
        d = data.to_numpy(dtype=np.float64)
        step = np.nanmax(np.abs(np.diff(d, axis=0)), axis=0) if len(d) > 1 else np.zeros(d.shape[1])
        g_scale, u_scale = _scale(g), _scale(step)
    out = params[["idx", "name", "layer", "neuron"]].copy()
    out["max_abs_grad"] = g
    out["max_abs_update"] = step
    out["stalled"] = (g < ratio * g_scale) & (step < ratio * u_scale)
    out = out.sort_values(["stalled", "max_abs_grad"], ascending=[False, True])
    out = out.reset_index(drop=True)[STALLED_COLUMNS]
    out.attrs.update(grad_scale=g_scale, update_scale=u_scale, ratio=ratio, last=len(steps))
    return out


def _scale(x: np.ndarray) -> float:
    """The median of the finite values (NaN when none): what is typical in this run."""
    finite = x[np.isfinite(x)]
    return float(np.median(finite)) if len(finite) else math.nan
