"""Where two runs part: the first difference in settings, shapes, parameters and nodes.

    >>> d = store.diff("moons", "moons-lr2")          # doctest: +SKIP
    >>> d.identical, d.first_param_step               # doctest: +SKIP
    (False, 41)
    >>> d.update.step, d.node_value.node              # doctest: +SKIP
    (40, 17)

The engine is deterministic, so two runs of one program with one seed hold the same
bits at every step; the first step where they do not is where something changed.
The search never walks node by node in Python:

1. parameters: the database lists the first step whose stored parameter bytes
   differ (a join of the two runs' rows on the primary key, blobs compared by the
   database: exact over every step); that step's decoded arrays are compared whole
   (numpy). If they agree (a tolerance was given, or the runs encode alike values
   differently), the later steps are bisected;
2. node traces (about 1,000 times larger) are probed, not scanned: the first
   traced step, then the steps where the parameters (or a metric) first differ, since
   a node that differs shows there (a one-ulp nudge can heal later); the first probe
   that differs is bisected back to the probe before it. With no probe differing,
   the traced steps are bisected, assuming runs that have parted stay apart;
3. within the first step whose trace differs, one vectorised comparison names the
   first node, in topological order, whose value differs and the first whose
   gradient differs.

Equality is bit-exact by default (a NaN equals a NaN of the same bits, -0.0 differs
from 0.0); ``rtol``/``atol`` allow ``|a - b| <= atol + rtol * |b|``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.analysis.difftypes import (
    SETTINGS,
    NodeDiff,
    ParamDiff,
    RunDiff,
    Setting,
    UpdateDiff,
    first_unequal,
)
from gradtrace.tracer.errors import ConfigError
from gradtrace.tracer.storage.models import Graph, Step, Trace

if TYPE_CHECKING:
    from gradtrace.tracer.read.runview import RunView


def first_differing_step(
    candidate: int | None, later: list[int], differs: Callable[[int], bool]
) -> int | None:
    """The first step that differs, from the first step whose bytes differ (``candidate``)
    and the common steps after it (``later``), bisected when the candidate agrees."""
    if candidate is None:
        return None
    if differs(candidate):
        return candidate
    lo, hi = 0, len(later)  # invariant: later[:lo] agree; later[hi:] differ
    if not later or not differs(later[-1]):
        return None
    hi = len(later) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if differs(later[mid]):
            hi = mid
        else:
            lo = mid + 1
    return later[lo]


def probe_then_bisect(
    steps: list[int], hints: list[int], differs: Callable[[int], bool]
) -> int | None:
    """The first of ``steps`` that differs, reading few of them.

    Probes the first step and, in order, the first step at or after each hint
    (where the parameters or a metric first differ: a small difference can heal
    later, so it is looked for where it starts). The first probe that differs is
    refined by bisecting back to the probe before it; when none differs, all the
    steps after the first are bisected.
    """
    if not steps:
        return None
    arr = np.asarray(steps, dtype=np.int64)
    probes = sorted({0, *(int(np.searchsorted(arr, h)) for h in hints)} - {len(steps)})
    agreed = 0
    for i in probes:
        if differs(steps[i]):
            if i == 0:
                return steps[0]
            return first_differing_step(steps[agreed + 1], steps[agreed + 2 : i + 1], differs)
        agreed = i
    return first_differing_step(steps[0], steps[1:], differs) if len(steps) > 1 else None


def _check_tolerance(rtol: float, atol: float) -> None:
    for name, x in (("rtol", rtol), ("atol", atol)):
        if not isinstance(x, int | float) or isinstance(x, bool) or not x >= 0:
            raise ConfigError(f"{name} must be a number >= 0, got {x!r}; 0 means bit-exact")


def diff_runs(a: RunView, b: RunView, rtol: float = 0.0, atol: float = 0.0) -> RunDiff:
    """Compare runs ``a`` and ``b`` (see the module docstring)."""
    _check_tolerance(rtol, atol)
    from gradtrace.tracer.analysis.diffread import (
        common_steps,
        first_byte_diff_param_step,
        metric_series,
        metric_sides,
        settings_of,
        shape_diff,
    )

    names_a = a.parameters()["name"].tolist()
    names_b = b.parameters()["name"].tolist()
    keys_a, keys_b = _shape_keys(a), _shape_keys(b)
    shape = shape_diff(a, b, keys_a, keys_b)
    steps = common_steps(a, b, Step)
    out = RunDiff(
        a_id=a.id,
        b_id=b.id,
        a_name=a.name,
        b_name=b.name,
        settings=_settings(settings_of(a, SETTINGS), settings_of(b, SETTINGS)),
        same_parameters=names_a == names_b,
        parameter_names=(names_a, names_b),
        same_shapes=shape is None,
        shape=shape,
        common_steps=len(steps),
        last_common_step=steps[-1] if steps else None,
        steps_a=int(a.info["steps"]),
        steps_b=int(b.info["steps"]),
        rtol=rtol,
        atol=atol,
    )
    out.metrics = metric_sides(metric_series(a), metric_series(b), rtol, atol)
    if names_a == names_b and names_a:
        _param_search(out, a, b, steps, first_byte_diff_param_step(a, b), rtol, atol)
    traced = common_steps(a, b, Trace)
    hints = [m.first_diff_step for m in out.metrics if m.first_diff_step is not None]
    if out.first_param_step is not None:
        hints += [out.first_param_step - 1, out.first_param_step]
    step = probe_then_bisect(traced, hints, lambda s: _trace_differs(a, b, s, rtol, atol))
    if step is not None:
        out.first_trace_step = step
        out.node_value, out.node_grad = _node_diffs(a, b, step, rtol, atol)
    return out


def _shape_keys(view: RunView) -> list[tuple[int, str, int]]:
    """(first_step, fingerprint, graph_key) of every distinct shape, by first step."""
    return [
        (int(s), str(f), int(k))
        for s, f, k in view.select_rows(
            sa.select(Graph.first_step, Graph.fingerprint, Graph.graph_key)
            .where(Graph.run_key == view.key)
            .order_by(Graph.first_step, Graph.graph_key)
        )
    ]


def _settings(sa_: list[tuple[str, Any]], sb: list[tuple[str, Any]]) -> list[Setting]:
    da, db = dict(sa_), dict(sb)
    keys = list(da) + [k for k in db if k not in da]
    return [Setting(k, da.get(k), db.get(k)) for k in keys]


def _param_row(view: RunView, step: int) -> np.ndarray:
    return view.param_arrays(steps=step, which="data").to_numpy(dtype=np.float64)[0]


def _param_search(
    out: RunDiff, a: RunView, b: RunView, steps: list[int], cand: int | None, rtol, atol
) -> None:
    later = steps[steps.index(cand) + 1 :] if cand in steps else []

    def differs(s: int) -> bool:
        return first_unequal(_param_row(a, s), _param_row(b, s), rtol, atol) is not None

    step = first_differing_step(cand, later, differs)
    if step is None:
        return
    pa, pb = _param_row(a, step), _param_row(b, step)
    j = first_unequal(pa, pb, rtol, atol)
    name = out.parameter_names[0][j]
    out.first_param_step = step
    out.param = ParamDiff(step, j, name, float(pa[j]), float(pb[j]))
    before = [s for s in steps if s < step]
    if before:
        out.update = _update_diff(a, b, before[-1], rtol, atol)


def _update_diff(a: RunView, b: RunView, step: int, rtol, atol) -> UpdateDiff | None:
    ua, ub = a.updates(steps=step), b.updates(steps=step)
    if ua.empty or ub.empty or len(ua) != len(ub):
        return None
    after_a, after_b = ua["value_after"].to_numpy(), ub["value_after"].to_numpy()
    j = first_unequal(after_a, after_b, rtol, atol)
    lr_a, lr_b = float(ua["lr"].iloc[0]), float(ub["lr"].iloc[0])
    return UpdateDiff(
        step,
        lr_a,
        lr_b,
        None if j is None else j,
        None if j is None else str(ua["name"].iloc[j]),
        None if j is None else float(after_a[j]),
        None if j is None else float(after_b[j]),
    )


def _trace_differs(a: RunView, b: RunView, step: int, rtol, atol) -> bool:
    na, nb = a.nodes(step), b.nodes(step)
    if len(na) != len(nb) or not _same_structure(na, nb):
        return True
    return any(
        first_unequal(na[c].to_numpy(), nb[c].to_numpy(), rtol, atol) is not None
        for c in ("value", "grad")
    )


def _same_structure(na: pd.DataFrame, nb: pd.DataFrame) -> bool:
    return bool(
        (na["op"].to_numpy() == nb["op"].to_numpy()).all()
        and na["a"].equals(nb["a"])
        and na["b"].equals(nb["b"])
    )


def _node_diffs(
    a: RunView, b: RunView, step: int, rtol, atol
) -> tuple[NodeDiff | None, NodeDiff | None]:
    na, nb = a.nodes(step), b.nodes(step)
    if len(na) != len(nb) or not _same_structure(na, nb):
        return None, None  # the shapes part here: RunDiff.shape says where
    names = a.parameters()["name"].tolist()
    found = []
    for col in ("value", "grad"):
        va, vb = na[col].to_numpy(), nb[col].to_numpy()
        i = first_unequal(va, vb, rtol, atol)
        if i is None:
            found.append(None)
            continue
        row = na.iloc[i]
        param = None if pd.isna(row["param"]) else names[int(row["param"])]
        found.append(
            NodeDiff(step, i, str(row["op"]), str(row["label"]), param, float(va[i]), float(vb[i]))
        )
    return found[0], found[1]
