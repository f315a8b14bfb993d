"""The reads behind :mod:`gradtrace.tracer.analysis.diff`: steps both runs logged, the first
step whose stored bytes differ, shapes, settings and metrics side by side.

    >>> common_steps(view_a, view_b, Step)                  # doctest: +SKIP
    [0, 1, 2, ...]

The parameter byte comparison runs in the database, on a join of the two runs' rows
by their primary key, so 10,000 steps are compared without shipping arrays to Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.analysis.difftypes import (
    HIGHER_IS_BETTER,
    MetricSide,
    ShapeDiff,
    first_unequal,
)
from gradtrace.tracer.storage.codec import apply_raw
from gradtrace.tracer.storage.models import Metric, ParamValues, Step, Trace

if TYPE_CHECKING:
    from gradtrace.tracer.read.runview import RunView


def common_steps(a: RunView, b: RunView, table: type[Step] | type[Trace]) -> list[int]:
    """Step numbers present in ``table`` for both runs.

    Each run's steps are read on their own, from the keys (an index covers them),
    and intersected here: a join would make the database visit the wide rows.
    """
    steps = [
        np.array(
            [r[0] for r in v.select_rows(sa.select(table.step).where(table.run_key == v.key))],
            dtype=np.int64,
        )
        for v in (a, b)
    ]
    return np.intersect1d(steps[0], steps[1]).tolist()


def metric_series(view: RunView) -> dict[str, pd.Series]:
    """Every metric as a Series indexed by step (exact bits of NaN and -0.0 kept):
    the diff's lean read, without the wide frame ``metrics()`` builds."""
    _, rows = view.store.fetch(
        sa.select(Metric.name, Metric.step, Metric.value, Metric.raw)
        .where(Metric.run_key == view.key)
        .order_by(Metric.name, Metric.step)
    )
    if not rows:
        return {}
    names, steps, values, raws = zip(*rows, strict=True)
    v = np.array(values, dtype=np.float64)  # NULL (None) reads as NaN
    apply_raw({"value": v}, raws)
    step = np.array(steps, dtype=np.int64)
    name_arr = np.array(names, dtype=object)
    cuts = np.flatnonzero(name_arr[1:] != name_arr[:-1]) + 1
    out = {}
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(name_arr)], strict=True):
        out[str(name_arr[lo])] = pd.Series(v[lo:hi], index=pd.Index(step[lo:hi], name="step"))
    return out


def first_byte_diff_param_step(a: RunView, b: RunView) -> int | None:
    """The first common step whose parameter-value bytes differ."""
    sa_, sb = sa.orm.aliased(ParamValues), sa.orm.aliased(ParamValues)
    stmt = (
        sa.select(sa.func.min(sa_.step))
        .join(sb, sa.and_(sb.run_key == b.key, sb.step == sa_.step))
        .where(sa_.run_key == a.key, sa_.data != sb.data)
    )
    return a.select_max(stmt)


def shape_diff(
    a: RunView,
    b: RunView,
    keys_a: list[tuple[int, str, int]],
    keys_b: list[tuple[int, str, int]],
) -> ShapeDiff | None:
    """Where the runs' graph shapes (in order of first use) first differ, or None."""

    for i in range(max(len(keys_a), len(keys_b))):
        ka = keys_a[i] if i < len(keys_a) else None
        kb = keys_b[i] if i < len(keys_b) else None
        if ka is not None and kb is not None and ka[1] == kb[1]:
            continue
        if ka is None or kb is None:
            return ShapeDiff(i, ka and ka[0], kb and kb[0], None, None, None, None, None)
        ga, gb = a.structure(ka[2]), b.structure(kb[2])
        node = _first_structure_diff(ga, gb)
        pick = _node_facts(ga, node), _node_facts(gb, node)
        return ShapeDiff(i, ka[0], kb[0], node, pick[0][0], pick[1][0], pick[0][1], pick[1][1])
    return None


def _first_structure_diff(ga: pd.DataFrame, gb: pd.DataFrame) -> int:
    n = min(len(ga), len(gb))
    ops_a, ops_b = ga["op"].to_numpy(dtype=object)[:n], gb["op"].to_numpy(dtype=object)[:n]
    pa = ga[["a", "b"]].fillna(-1).to_numpy(dtype=np.int64)[:n]
    pb = gb[["a", "b"]].fillna(-1).to_numpy(dtype=np.int64)[:n]
    pra = ga["param"].fillna(-1).to_numpy(dtype=np.int64)[:n]
    prb = gb["param"].fillna(-1).to_numpy(dtype=np.int64)[:n]
    bad = np.flatnonzero((ops_a != ops_b) | (pa != pb).any(axis=1) | (pra != prb))
    return int(bad[0]) if bad.size else n


def _node_facts(g: pd.DataFrame, node: int) -> tuple[str | None, tuple[int, ...] | None]:
    if node >= len(g):
        return None, None
    return str(g["op"].iloc[node]), tuple(int(p) for p in g["parents"].iloc[node])


def settings_of(view: RunView, wanted: list[tuple[str, str | None]]) -> list[tuple[str, Any]]:
    """``[(key, value)]``: the config flattened to ``config.<key>``, then ``wanted``."""
    flat = pd.json_normalize([view.config], sep=".").to_dict("records")[0] if view.config else {}
    out: list[tuple[str, Any]] = [(f"config.{k}", _plain(v)) for k, v in sorted(flat.items())]
    for label, column in wanted:
        if column is None:
            out.append((label, view.status))
        elif isinstance(view.info.get(column), dict):  # a spec: one row per field
            spec = pd.json_normalize([view.info[column]], sep=".").to_dict("records")[0]
            out += [(f"{label}.{k}", _plain(v)) for k, v in sorted(spec.items())]
        elif column in view.info:
            out.append((label, _plain(view.info[column])))
    return out


def _plain(v: Any) -> Any:
    """JSON-ish values comparable with ``==`` (lists, not numpy arrays)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def metric_sides(
    ma: dict[str, pd.Series], mb: dict[str, pd.Series], rtol: float, atol: float
) -> list[MetricSide]:
    """Final, best (with its step) and the first differing step of every metric;
    ``ma``/``mb`` as :func:`metric_series` returns them."""

    empty = pd.Series(dtype=np.float64)
    out = []
    for name in list(ma) + [n for n in mb if n not in ma]:
        xa, xb = ma.get(name, empty), mb.get(name, empty)
        higher = name.lower() in HIGHER_IS_BETTER
        fa, fb = _final(xa.dropna()), _final(xb.dropna())
        ba, bb = _best(xa, higher), _best(xb, higher)
        first = None
        if name in ma and name in mb:
            common = xa.index.intersection(xb.index)
            i = first_unequal(
                xa.reindex(common).to_numpy(), xb.reindex(common).to_numpy(), rtol, atol
            )
            first = None if i is None else int(common[i])
        out.append(MetricSide(name, fa, fb, ba[0], ba[1], bb[0], bb[1], first))
    return out


def _final(s: pd.Series) -> float | None:
    return None if s.empty else float(s.iloc[-1])


def _best(s: pd.Series, higher: bool) -> tuple[float | None, int | None]:
    finite = s[np.isfinite(s.to_numpy(dtype=np.float64))]
    if finite.empty:
        return None, None
    step = finite.idxmax() if higher else finite.idxmin()
    return float(finite.loc[step]), int(step)
