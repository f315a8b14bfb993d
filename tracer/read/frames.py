"""What every reader of runs shares: the string dtype, UTC times, the status a
reader shows, the collector held off while frames are built, last metric values.

    >>> with gc_paused():                       # doctest: +SKIP
    ...     df = pd.DataFrame(rows)

Both :mod:`store` (the runs list) and :mod:`runview` (one run) build on it, so
neither has to import the other's internals.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.storage.codec import apply_raw
from gradtrace.tracer.storage.models import RunMetric
from gradtrace.tracer.storage.procinfo import is_alive, pid_namespace

if TYPE_CHECKING:
    from gradtrace.tracer.read.store import Store

STR = pd.Series(["x"]).dtype  # pandas' string dtype (``str`` in pandas 3, object before)
_ARROW_STR = getattr(STR, "storage", None) == "pyarrow"
STALE_AFTER = timedelta(hours=1)  # a run on another host silent this long reads as crashed


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a bulk read allocates its rows.

    Tens of thousands of row tuples set off full collections, and with pandas and
    SQLAlchemy loaded each one walks a large heap (it doubled ``metrics()`` on a
    10,000-step run). Rows make no cycles, so nothing is left for the collector.
    Nested and concurrent uses (dashboard threads) restore the state once, at the end.
    Also a decorator: ``@gc_paused()`` over a read that builds a frame from its rows.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


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
    step, exact bits of NaN and -0.0 restored. Read from the summary the writer keeps
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


def str_series(values: Sequence[str] | np.ndarray) -> pd.Series:
    """A Series of ``str`` in pandas' string dtype, ``str_series(["a", ""])``.

    Where that dtype is stored by pyarrow, the array is made by pyarrow in one C
    loop: the same Series as ``pd.Series(values, dtype=STR)``, without pandas'
    per-item checks (a graph's op, label and kind columns are one item per node).
    """
    if _ARROW_STR:
        import pyarrow as pa

        return pd.Series(pd.array(pa.array(values, pa.large_string()), dtype=STR))
    return pd.Series(values, dtype=STR)


def parents_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each node's operands as a tuple of node indices, ``()``, ``(a,)`` or ``(a, b)``,
    in an object array; ``a``/``b`` hold -1 where there is no operand.

        >>> parents_array(np.array([-1, -1, 0, 2]), np.array([-1, -1, 1, -1])).tolist()
        [(), (), (0, 1), (2,)]

    The tuples are made by ``zip`` over each kind of node at once, not one
    Python branch per node."""
    out = np.empty(len(a), dtype=object)
    has_a = a >= 0
    two = has_a & (b >= 0)
    one = has_a & ~two
    for mask, columns in ((two, (a, b)), (one, (a,))):
        picked = [c[mask].tolist() for c in columns]
        out[mask] = np.fromiter(zip(*picked), dtype=object, count=len(picked[0]))
    leaves = int((~has_a).sum())
    out[~has_a] = np.fromiter(repeat((), leaves), dtype=object, count=leaves)
    return out
