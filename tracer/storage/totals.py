"""The per-run totals the writer keeps up to date, step by step.

    >>> sql = metric_upsert_sql(engine.dialect)      # doctest: +SKIP
    >>> conn.exec_driver_sql(sql, metric_totals(batch.metrics))   # doctest: +SKIP

Kept at write time so readers never scan a run to answer a small question:

===========================  ==================================================
``run_metrics``              per run and metric: last step, last value (exact
                             bits of NaN/-0.0 in ``last_raw``), min and max
``runs.steps``               steps logged
``runs.heartbeat_at``        last write time (indexed: "anything new since T?")
``runs.first_nonfinite_step``  the step of the run's first NaN/inf origin
                             (``first_nonfinite().step``, see below)
===========================  ==================================================

``first_nonfinite_step`` is the step ``RunView.first_nonfinite()`` names, so the
reader can start its search there (and skip it on a finite run): the first step
with a NaN/inf node value or gradient, metric or parameter gradient; for a
parameter *value*, the step whose update made it (the previous logged step; a
value already non-finite at the run's first step counts at that step); and the
last step, when its update (written at ``close()``) made one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa
from gradtrace.tracer.storage.models import RunMetric
from sqlalchemy.engine import Dialect


def any_nonfinite(values: Iterable[float]) -> bool:
    """True when any float is NaN or infinite (``math.isfinite`` over the values, in C)."""
    return not all(map(math.isfinite, values))


def nonfinite_step(
    step: int, other: bool, params: np.ndarray | None, previous: int | None
) -> int | None:
    """The step one logged step charges to the run's first NaN/inf, or None.

    ``other``: a node or metric of ``step`` is non-finite; ``params``: the (2, n)
    values and gradients logged at ``step``; ``previous``: the last step logged
    with parameters before it. A parameter value that turned non-finite was made
    by the previous step's update, as ``tracer/analysis/origins.py`` reads it.

        >>> nonfinite_step(5, False, np.array([[math.inf], [0.0]]), previous=4)
        4
    """
    if params is not None and not np.isfinite(params[0]).all() and previous is not None:
        return previous
    if other or (params is not None and not np.isfinite(params).all()):
        return step
    return None


def metric_totals(metric_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``run_metrics`` rows from ``metrics`` rows ``(run_key, name, step, value, raw)``."""
    return [(k, n, s, v, raw, v, v) for k, n, s, v, raw in metric_rows]


def _pick(new: sa.ColumnElement, old: sa.ColumnElement, better: sa.ColumnElement) -> sa.Case:
    """The new value unless it is NULL (NaN) or not better than the old one."""
    return sa.case((new.is_(None), old), (sa.or_(old.is_(None), better), new), else_=old)


def metric_upsert_sql(dialect: Dialect) -> str:
    """Positional ``INSERT ... ON CONFLICT DO UPDATE`` for ``run_metrics``, compiled for
    ``dialect`` (qmark on SQLite, format on PostgreSQL) from the model, never from text."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(RunMetric)
    new, table = stmt.excluded, RunMetric.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.run_key, table.name],
        set_={
            "last_step": new.last_step,
            "last_value": new.last_value,
            "last_raw": new.last_raw,
            "min_value": _pick(new.min_value, table.min_value, new.min_value < table.min_value),
            "max_value": _pick(new.max_value, table.max_value, new.max_value > table.max_value),
        },
        where=table.last_step < new.last_step,  # a step written twice changes nothing
    )
    positional = type(dialect)(paramstyle="format" if dialect.name == "postgresql" else "qmark")
    return str(stmt.compile(dialect=positional))
