"""The reads behind :mod:`gradtrace.tracer.diff`: steps both runs logged, the first
step whose stored bytes differ, shapes, settings and metrics side by side.

    >>> common_steps(view_a, view_b, Step)                  # doctest: +SKIP
    [0, 1, 2, ...]

The byte comparisons run in the database, on a join of the two runs' rows by their
primary key, so a 10,000-step run is compared without shipping its arrays to Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.models import Graph, Step, Trace

if TYPE_CHECKING:
    from gradtrace.tracer.diff import MetricSide, ShapeDiff
    from gradtrace.tracer.runview import RunView


def common_steps(a: RunView, b: RunView, table: type[Step] | type[Trace]) -> list[int]:
    """Step numbers present in ``table`` for both runs (for ``Step``: with parameters)."""
    ta, tb = sa.orm.aliased(table), sa.orm.aliased(table)
    cond = [ta.run_key == a.key]
    if table is Step:
        cond += [ta.param_data.is_not(None), tb.param_data.is_not(None)]
    stmt = (
        sa.select(ta.step)
        .join(tb, sa.and_(tb.run_key == b.key, tb.step == ta.step))
        .where(*cond)
        .order_by(ta.step)
    )
    return [int(r[0]) for r in a._rows(stmt)]


def first_byte_diff_param_step(a: RunView, b: RunView) -> int | None:
    """The first common step whose parameter-value bytes differ."""
    sa_, sb = sa.orm.aliased(Step), sa.orm.aliased(Step)
    stmt = (
        sa.select(sa.func.min(sa_.step))
        .join(sb, sa.and_(sb.run_key == b.key, sb.step == sa_.step))
        .where(sa_.run_key == a.key, sa_.param_data != sb.param_data)
    )
    return a._max(stmt)


def first_byte_diff_trace_step(a: RunView, b: RunView) -> int | None:
    """The first common traced step whose shape, value bytes or gradient bytes differ."""
    ta, tb = sa.orm.aliased(Trace), sa.orm.aliased(Trace)
    ga, gb = sa.orm.aliased(Graph), sa.orm.aliased(Graph)
    stmt = (
        sa.select(sa.func.min(ta.step))
        .join(tb, sa.and_(tb.run_key == b.key, tb.step == ta.step))
        .join(ga, ga.graph_key == ta.graph_key)
        .join(gb, gb.graph_key == tb.graph_key)
        .where(
            ta.run_key == a.key,
            sa.or_(ga.fingerprint != gb.fingerprint, ta.data != tb.data, ta.grad != tb.grad),
        )
    )
    return a._max(stmt)


def shape_diff(
    a: RunView,
    b: RunView,
    keys_a: list[tuple[int, str, int]],
    keys_b: list[tuple[int, str, int]],
) -> ShapeDiff | None:
    """Where the runs' graph shapes (in order of first use) first differ, or None."""
    from gradtrace.tracer.diff import ShapeDiff

    for i in range(max(len(keys_a), len(keys_b))):
        ka = keys_a[i] if i < len(keys_a) else None
        kb = keys_b[i] if i < len(keys_b) else None
        if ka is not None and kb is not None and ka[1] == kb[1]:
            continue
        if ka is None or kb is None:
            return ShapeDiff(i, ka and ka[0], kb and kb[0], None, None, None, None, None)
        ga, gb = a._structure(ka[2]), b._structure(kb[2])
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


def metric_sides(ma: pd.DataFrame, mb: pd.DataFrame, rtol: float, atol: float) -> list[MetricSide]:
    """Final, best (with its step) and the first differing step of every metric."""
    from gradtrace.tracer.diff import HIGHER_IS_BETTER, MetricSide, first_unequal

    names = [c for c in ma.columns if c != "wall_time"]
    names += [c for c in mb.columns if c != "wall_time" and c not in names]
    out = []
    for name in names:
        sa_ = ma[name].dropna() if name in ma else pd.Series(dtype=np.float64)
        sb = mb[name].dropna() if name in mb else pd.Series(dtype=np.float64)
        higher = name.lower() in HIGHER_IS_BETTER
        fa, fb = _final(sa_), _final(sb)
        ba, bb = _best(sa_, higher), _best(sb, higher)
        first = None
        if name in ma and name in mb:
            common = ma.index.intersection(mb.index)
            xa, xb = ma[name].reindex(common).to_numpy(), mb[name].reindex(common).to_numpy()
            i = first_unequal(xa, xb, rtol, atol)
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
