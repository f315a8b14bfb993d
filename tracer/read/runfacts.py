"""What the runs list and one run's view both say about a run: its status as a reader
sees it, its times in UTC, each metric's last value.

    >>> effective_status("running", host, pid, started, heartbeat)   # doctest: +SKIP
    'crashed'
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.read.frames import STR
from gradtrace.tracer.storage.codec import apply_raw
from gradtrace.tracer.storage.models import RunMetric
from gradtrace.tracer.storage.procinfo import is_alive, pid_namespace

if TYPE_CHECKING:
    from gradtrace.tracer.read.store import Store

STALE_AFTER = timedelta(hours=1)  # a run on another host silent this long reads as crashed


def effective_status(
    status: str,
    host: str,
    pid: int,
    pid_started: float | None,
    heartbeat: datetime | None,
    now: datetime | None = None,
    pid_ns: str | None = None,
) -> str:
    """``running`` becomes ``crashed`` when its writer is gone (same host and pid
    namespace, where its pid means something) or long silent."""
    if status != "running":
        return status
    if host == socket.gethostname() and (pid_ns is None or pid_ns == pid_namespace()):
        return "running" if is_alive(pid, pid_started) else "crashed"
    now = now or datetime.now(UTC)
    if heartbeat is not None and now - as_utc(heartbeat) > STALE_AFTER:
        return "crashed"
    return "running"


def as_utc(ts: datetime | None) -> datetime | None:
    """A UTC datetime: SQLite hands back naive ones (gradtrace writes UTC), PostgreSQL
    aware ones in the session's time zone."""
    if ts is None or pd.isna(ts):
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def last_metric_values(store: Store, run_keys: list[int]) -> pd.DataFrame:
    """Long table run_key, name, step, value: each metric's value at its last logged
    step, exact bits of NaN and -0.0 restored. Read from the totals the writer keeps
    (``run_metrics``): one row per run and metric, whatever the runs' lengths."""
    keys = sorted(set(run_keys))
    where = RunMetric.run_key.in_(keys) if len(keys) <= 500 else sa.true()
    _, rows = store.fetch(
        sa.select(
            RunMetric.run_key,
            RunMetric.name,
            RunMetric.last_step,
            RunMetric.last_value,
            RunMetric.last_raw,
        ).where(where)
    )
    wanted = set(keys)
    rows = [r for r in rows if r[0] in wanted]
    floats = {"value": np.array([r[3] for r in rows], dtype=np.float64)}
    apply_raw(floats, [r[4] for r in rows])
    df = pd.DataFrame(
        {
            "run_key": np.array([r[0] for r in rows], dtype=np.int64),
            "name": pd.Series([r[1] for r in rows], dtype=STR),
            "step": np.array([r[2] for r in rows], dtype=np.int64),
            **floats,
        }
    )
    return df.sort_values(["run_key", "name"], ignore_index=True)
