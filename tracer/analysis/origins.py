"""The definition of ``tracer/analysis/forensics.py`` applied to a whole run: a stored one
(:func:`find_origin`, behind ``RunView.first_nonfinite()``) and one being recorded
(:class:`LiveCheck`, behind the recorder's warning).

    >>> origin = find_origin(tracer.connect("runs.db").run("moons"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa
from gradtrace.tracer.analysis.forensics import KINDS, step_origin
from gradtrace.tracer.analysis.origintypes import NodeTrace, Origin, StepData
from gradtrace.tracer.storage.models import Metric, ParamValues, Run, Step, Trace

if TYPE_CHECKING:
    from gradtrace.tracer.read.runview import RunView
    from gradtrace.tracer.recording.capture import Snapshot


# -- a stored run ----------------------------------------------------------------------------


class _Stored:
    """The few reads :func:`find_origin` needs, all bound and indexed."""

    def __init__(self, view: RunView):
        self.view, self.key = view, view.key

    def rows(self, stmt: sa.Select) -> list[tuple]:
        return self.view.store.fetch(stmt)[1]

    def totals_step(self) -> int | None:
        """The first non-finite step in the writer's totals (storage/totals.py): a key lookup."""
        return self.view.select_max(
            sa.select(Run.first_nonfinite_step).where(Run.run_key == self.key)
        )

    def start(self, recorded: int) -> int:
        """Where the search starts: the last step logged with parameters before the
        totals' step (a parameter value made non-finite there shows one row later,
        as totals written before gradtrace charged the update's step recorded it)."""
        before = self.view.select_max(
            sa.select(sa.func.max(ParamValues.step)).where(
                ParamValues.run_key == self.key, ParamValues.step < recorded
            )
        )
        return recorded if before is None else before

    def first_bad_trace(self, start: int) -> int | None:
        """The first step from ``start`` whose node trace holds a NaN/inf (the writer marks it)."""
        return self.view.select_max(
            sa.select(sa.func.min(Step.step)).where(
                Step.run_key == self.key, Step.step >= start, Step.first_nonfinite.is_not(None)
            )
        )

    def first_bad_metric(self, start: int) -> tuple[int, str, float] | None:
        """(step, name, value) of the first non-finite metric from ``start`` (NaN is NULL)."""
        rows = self.rows(
            sa.select(Metric.step, Metric.name, Metric.value, Metric.raw)
            .where(Metric.run_key == self.key, Metric.step >= start, nonfinite_sql(Metric.value))
            .order_by(Metric.step, Metric.name)
            .limit(1)
        )
        if not rows:
            return None
        step, name, value, raw = rows[0]
        if raw is not None:
            value = float(np.frombuffer(bytes(raw)[:8], dtype="<f8")[0])
        return int(step), str(name), math.nan if value is None else float(value)

    def traced(self, step: int) -> bool:
        return bool(
            self.rows(sa.select(Trace.step).where(Trace.run_key == self.key, Trace.step == step))
        )

    def node_trace(self, step: int) -> NodeTrace:
        df = self.view.nodes(step)
        return NodeTrace(
            ops=np.asarray(df["op"].to_numpy(dtype=object), dtype=str),
            a=df["a"].to_numpy(dtype=np.int64, na_value=-1),
            b=df["b"].to_numpy(dtype=np.int64, na_value=-1),
            args=df["arg"].to_numpy(dtype=np.float64),
            labels=df["label"].to_numpy(dtype=object),
            params=df["param"].to_numpy(dtype=np.int64, na_value=-1),
            values=df["value"].to_numpy(dtype=np.float64),
            grads=df["grad"].to_numpy(dtype=np.float64),
        )

    def lr(self, step: int) -> float | None:
        """The learning rate of a step's update (parameter 0's row: one key lookup)."""
        upd = self.view.updates(params=[0], steps=step)
        if upd.empty or math.isnan(upd["lr"].iloc[0]):
            return None
        return float(upd["lr"].iloc[0])


def nonfinite_sql(column: sa.ColumnElement) -> sa.ColumnElement:
    """SQL for "this float column holds NaN (stored as NULL) or ±inf"."""
    return sa.or_(column.is_(None), column.in_([math.inf, -math.inf]))


def find_origin(view: RunView) -> Origin | None:
    """The origin of the first NaN/inf of a stored run, or None if all is finite.

    Reads: the writer's totals' first non-finite step (None: done, the run is finite),
    then from the parameter row before it the first step whose node trace holds a
    NaN/inf and the first non-finite metric (two indexed queries), the parameter
    arrays up to that step, and that one step's nodes.
    """
    q = _Stored(view)
    recorded = q.totals_step()
    if recorded is None:
        return None
    start = q.start(recorded)
    names = view.param_names
    # (step, kind rank, source rank, how to name it): the earliest wins, a node
    # trace before the parameter arrays before the metrics.
    candidates: list[tuple[int, int, int, Callable[[], Origin | None]]] = []
    traced_step = q.first_bad_trace(start)
    if traced_step is not None:

        def from_trace(step: int = traced_step) -> Origin | None:
            s = StepData(step, names, q.node_trace(step))
            return step_origin(s, ("forward", "backward"))

        candidates.append((traced_step, 0, 0, from_trace))
    metric = q.first_bad_metric(start)
    if metric is not None:
        m = StepData(metric[0], metrics={metric[1]: metric[2]})
        candidates.append((m.step, 3, 2, lambda: step_origin(m, ("metric",), q.traced(m.step))))
    seen = _scan_params(view, q, start, min((c[0] for c in candidates), default=None))
    if seen is not None:
        kind, p = seen
        make = lambda: step_origin(p, (kind,), q.traced(p.step))  # noqa: E731
        candidates.append((p.step, KINDS.index(kind), 1, make))
    for *_, make in sorted(candidates, key=lambda c: c[:3]):
        found = make()
        if found is not None:
            return found
    return _last_update(view, q)


def _scan_params(
    view: RunView, q: _Stored, start: int, bound: int | None
) -> tuple[str, StepData] | None:
    """The first non-finite parameter value or gradient from step ``start`` (finite
    unless it is the run's first) up to step ``bound``, as the kind it stands for and
    its step's data: a value is the previous step's update (or, at the very first
    step, a forward origin), a gradient a backward one."""
    names = view.param_names
    if not len(names):
        return None
    prev: tuple[int, np.ndarray, np.ndarray] | None = None
    for steps, data, grad in view.param_chunks(bound, start):
        bad = ~(np.isfinite(data) & np.isfinite(grad))
        rows = np.flatnonzero(bad.any(axis=1))
        if not rows.size:
            prev = (int(steps[-1]), data[-1], grad[-1])
            continue
        i = int(rows[0])
        if i > 0:
            prev = (int(steps[i - 1]), data[i - 1], grad[i - 1])
        if np.isfinite(data[i]).all():
            return "backward", StepData(int(steps[i]), names, None, data[i], grad[i])
        if prev is None:
            return "forward", StepData(int(steps[i]), names, None, data[i], grad[i])
        step, before, g = prev
        return "update", StepData(step, names, None, before, g, data[i], q.lr(step))
    return None


def _last_update(view: RunView, q: _Stored) -> Origin | None:
    """Nothing non-finite anywhere: the last step's update may still have made one."""
    last = view.last_step()
    if last is None or not len(view.param_names):
        return None
    upd = view.updates(steps=last).sort_values("param")
    after = upd["value_after"].to_numpy(dtype=np.float64)
    if upd.empty or np.isfinite(after).all():
        return None
    lr = float(upd["lr"].iloc[0])
    s = StepData(
        last,
        view.param_names,
        None,
        upd["value_before"].to_numpy(dtype=np.float64),
        upd["grad"].to_numpy(dtype=np.float64),
        after,
        None if math.isnan(lr) else lr,
    )
    return step_origin(s, ("update",), q.traced(last))


# -- the recorder ---------------------------------------------------------------------------


class LiveCheck:
    """The recorder's check, step by step, until the first origin is found.

    A step's forward and backward are checked when it is logged; its update and
    metrics once the update is known, at the next ``log()`` or at ``close()``.
    """

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.pending: StepData | None = None
        self.found: Origin | None = None
        self.traced = False

    def logged(
        self,
        step: int,
        snapshot: Snapshot | None,
        data: np.ndarray | None,
        grad: np.ndarray | None,
        lr: float | None,
        metrics: Mapping[str, float],
    ) -> Origin | None:
        """Check a step just logged (and the previous one's update); the origin the
        first time one is found, else None."""
        if self.found is not None:
            return None
        origin = self._settle(data)
        if origin is None:
            nodes = None
            if snapshot is not None and snapshot.first_nonfinite is not None:
                nodes = NodeTrace.from_snapshot(snapshot)
            # A traced step whose nodes are all finite is still checked through the
            # parameter arrays: a watched parameter outside the graph may be bad.
            self.traced = snapshot is not None
            s = StepData(step, self.names, nodes, data, grad, None, lr, dict(metrics))
            origin = step_origin(s, ("forward", "backward"), traced=self.traced)
            self.pending = s
        self.found = origin
        return origin

    def closed(self, after: np.ndarray | None) -> Origin | None:
        """The last step's update and metrics, at the end of the run."""
        if self.found is not None:
            return None
        self.found = self._settle(after)
        return self.found

    def _settle(self, after: np.ndarray | None) -> Origin | None:
        s, self.pending = self.pending, None
        if s is None:
            return None
        s.param_after = after
        return step_origin(s, ("update", "metric"), traced=self.traced)
