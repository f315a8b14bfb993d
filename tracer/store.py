"""Reading runs back as pandas DataFrames.

    >>> store = connect("runs.db")                       # doctest: +SKIP
    >>> store.runs()[["name", "status", "steps", "metric.loss"]]   # doctest: +SKIP
    >>> run = store.run("moons")          # an id, a unique id prefix, or a name
    >>> run.metrics().loss.plot()                        # doctest: +SKIP

Every read is a bound, parameterized SQLAlchemy statement; names given by the
user never become SQL text.
"""

from __future__ import annotations

import gc
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.db import describe, open_database, writing
from gradtrace.tracer.errors import AmbiguousRun, RunNotFound
from gradtrace.tracer.models import Run, RunMetric
from gradtrace.tracer.procinfo import is_alive
from sqlalchemy.engine import URL, Engine

if TYPE_CHECKING:
    from gradtrace.tracer.runview import RunView

STR = pd.Series(["x"]).dtype  # pandas' string dtype (``str`` in pandas 3, object before)
STALE_AFTER = timedelta(hours=1)  # a run on another host silent this long reads as crashed
RUN_COLUMNS = (
    "id",
    "name",
    "experiment",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "steps",
    "diverged_at_step",
)


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
) -> str:
    """``running`` becomes ``crashed`` when its writer is gone (same host) or long silent."""
    if status != "running":
        return status
    if host == socket.gethostname():
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


def raw_floats(raws: list[bytes], width: int) -> np.ndarray:
    """Decode ``raw`` blobs (little-endian float64, at least ``width`` each) into an
    ``(n, width)`` float64 array, bit for bit."""
    sizes = {len(b) for b in raws}
    if len(sizes) == 1 and sizes.pop() == 8 * width:
        return (
            np.frombuffer(b"".join(raws), dtype="<f8").reshape(len(raws), width).astype(np.float64)
        )
    fmt = struct.Struct(f"<{width}d")
    return np.array([fmt.unpack(b[: 8 * width]) for b in raws], dtype=np.float64).reshape(
        len(raws), width
    )


def apply_raw(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Put back the exact bits of NaN and -0.0 kept in the ``raw`` column; drop it."""
    if "raw" not in df:
        return df
    raws = df["raw"].to_numpy(dtype=object)
    mask = np.array([b is not None for b in raws], dtype=bool)
    if mask.any():
        exact = raw_floats(list(raws[mask]), len(columns))
        for j, col in enumerate(columns):
            values = df[col].to_numpy(dtype=np.float64, copy=True)
            values[mask] = exact[:, j]
            df[col] = values
    return df.drop(columns="raw")


def public_url(url: URL) -> URL:
    """The URL the user gave: a read-only SQLite engine's ``file:...?mode=ro`` URI
    becomes the plain file path again (for messages)."""
    name = url.database or ""
    if url.get_backend_name() == "sqlite" and name.startswith("file:") and url.query.get("uri"):
        return URL.create(url.drivername, database=name[len("file:") :].split("?", 1)[0])
    return url


class Store:
    """A connection to one gradtrace database. Made by :func:`connect`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = public_url(engine.url)

    def __repr__(self) -> str:
        return f"<Store {describe(self.url)}>"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, stmt: sa.Executable) -> tuple[list[str], list[tuple]]:
        """Run a statement and return its column names and rows as the driver gives
        them: for bulk reads of ints, floats, text and bytes, where SQLAlchemy's
        per-row processing would cost several times the query itself."""
        return self.fetch_many(stmt)[0]

    def fetch_many(self, *stmts: sa.Executable) -> list[tuple[list[str], list[tuple]]]:
        """Like :meth:`fetch` for several statements read in one transaction, so
        they see the same snapshot even while a writer commits new steps."""
        out = []
        with gc_paused(), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one snapshot for the whole transaction
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                for stmt in stmts:
                    result = conn.execute(stmt)
                    keys = list(result.keys())
                    cursor = getattr(result, "cursor", None)
                    rows = cursor.fetchall() if cursor is not None else [tuple(r) for r in result]
                    result.close()
                    out.append((keys, rows))
        return out

    # -- runs --------------------------------------------------------------
    def change_stamp(self) -> list[str]:
        """A short value that changes whenever :meth:`runs` would: a run added,
        deleted or written to, or a running run's writer gone. Index lookups
        only, so a view can ask "anything new?" every few seconds for free.

            >>> stamp = store.change_stamp(); ...; store.change_stamp() == stamp   # doctest: +SKIP
        """
        totals = sa.select(
            sa.select(sa.func.count()).select_from(Run).scalar_subquery(),
            sa.select(sa.func.max(Run.run_key)).scalar_subquery(),
            sa.select(sa.func.max(Run.heartbeat_at)).scalar_subquery(),
        )
        running = sa.select(
            Run.run_key, Run.status, Run.host, Run.pid, Run.pid_started, Run.heartbeat_at
        ).where(Run.status == "running")
        (_, head), (_, live) = self.fetch_many(totals, running)
        now = datetime.now(UTC)
        stamp = [str(v) for v in head[0]]
        stamp += [f"{r[0]}:{effective_status(*r[1:], now)}" for r in live]
        return stamp

    @gc_paused()
    def runs(self, experiment: str | None = None) -> pd.DataFrame:
        """One row per run, newest first.

        Columns: ``id`` (str), ``name``, ``experiment``, ``status`` (a ``running`` run
        whose writer is gone reads ``crashed``), ``started_at`` and ``ended_at``
        (datetime64 UTC, NaT while running), ``duration_s`` (float, up to the end or
        the last heartbeat), ``steps`` (int64, steps logged), then the last value of
        each metric as ``metric.<name>`` (float64) and the config flattened into
        ``config.<key>`` columns (nested keys joined with dots).
        ``diverged_at_step`` (Int64) is the first step where a NaN or infinity
        appeared (node, metric or parameter), missing for a clean run.

        Reads the summary the writer keeps (one row per run and metric), so its
        cost grows with the number of runs, not with how long they ran.
        """
        stmt = sa.select(Run.__table__).order_by(Run.started_at.desc(), Run.run_key.desc())
        if experiment is not None:
            stmt = stmt.where(Run.experiment == experiment)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(stmt)]
        now = datetime.now(UTC)
        records = []
        for m in rows:
            started, ended = as_utc(m["started_at"]), as_utc(m["ended_at"])
            last = ended or as_utc(m["heartbeat_at"]) or started
            status = effective_status(
                m["status"], m["host"], m["pid"], m["pid_started"], m["heartbeat_at"], now
            )
            records.append(
                {
                    "id": m["id"],
                    "name": m["name"],
                    "experiment": m["experiment"],
                    "status": status,
                    "started_at": started,
                    "ended_at": ended,
                    "duration_s": (last - started).total_seconds(),
                    "steps": m["steps"],
                }
            )
        df = pd.DataFrame(
            {
                "id": pd.Series([r["id"] for r in records], dtype=STR),
                "name": pd.Series([r["name"] for r in records], dtype=STR),
                "experiment": pd.Series([r["experiment"] for r in records], dtype=STR),
                "status": pd.Series([r["status"] for r in records], dtype=STR),
                "started_at": _utc_times([r["started_at"] for r in records]),
                "ended_at": _utc_times([r["ended_at"] for r in records]),
                "duration_s": np.array([r["duration_s"] for r in records], dtype=np.float64),
                "steps": np.array([r["steps"] for r in records], dtype=np.int64),
                "diverged_at_step": pd.array([m["first_nonfinite_step"] for m in rows], "Int64"),
            }
        )
        if not records:
            return df
        last = self._last_metrics([m["run_key"] for m in rows])
        metric_cols = last.reindex([m["run_key"] for m in rows])
        metric_cols.index = df.index
        config = pd.json_normalize([m["config"] or {} for m in rows], sep=".")
        config = config.add_prefix("config.")
        config.index = df.index
        return pd.concat([df, metric_cols, config], axis=1)

    def _last_metrics(self, run_keys: list[int]) -> pd.DataFrame:
        """Index run_key; ``metric.<name>`` columns: each metric's value at its last step."""
        long = last_metric_values(self, run_keys)
        if long.empty:
            return pd.DataFrame(index=pd.Index([], dtype=np.int64, name="run_key"))
        wide = long.pivot(index="run_key", columns="name", values="value")
        wide = wide.reindex(columns=sorted(wide.columns))
        wide.columns = [f"metric.{c}" for c in wide.columns]
        return wide.astype(np.float64)

    def run(self, ref: str) -> RunView:
        """A run by exact id, exact name, unique id prefix or unique name prefix (in
        that order: an exact match wins over a prefix). The reference is plain text:
        ``%``, ``_`` and quotes match themselves."""
        from gradtrace.tracer.runview import RunView

        if not isinstance(ref, str) or not ref.strip():
            raise RunNotFound(f"a run reference must be a non-empty string, got {ref!r}")
        cols = sa.select(Run.run_key, Run.id, Run.name, Run.started_at)
        stages = [
            ("id", cols.where(Run.id == ref.lower())),
            ("name", cols.where(Run.name == ref)),
            ("id prefix", cols.where(Run.id.startswith(ref.lower(), autoescape=True))),
            ("name prefix", cols.where(Run.name.startswith(ref, autoescape=True))),
        ]
        with self.engine.connect() as conn:
            for what, stmt in stages:
                found = conn.execute(stmt.order_by(Run.started_at.desc()).limit(6)).all()
                if len(found) == 1:
                    return RunView(self, found[0].run_key)
                if len(found) > 1:
                    listed = ", ".join(
                        f"{r.id[:8]} ({r.name!r}, started {as_utc(r.started_at):%Y-%m-%d %H:%M})"
                        for r in found[:5]
                    )
                    count = "more than 5" if len(found) > 5 else str(len(found))
                    raise AmbiguousRun(
                        f"{ref!r} matches {count} runs by {what}: {listed}; "
                        "pass more characters of the id"
                    )
        raise RunNotFound(
            f"no run matches {ref!r} (by id, id prefix, name or name prefix) in "
            f"{describe(self.url)}; `gradtrace runs` lists them"
        )

    def delete_run(self, ref: str) -> None:
        """Remove a run and everything recorded for it (needs a writable store)."""
        view = self.run(ref)
        with writing(self.engine).begin() as conn:
            conn.execute(sa.delete(Run).where(Run.run_key == view.key))


def _utc_times(values: list[datetime | None]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("us")


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
    df = pd.DataFrame(
        {
            "run_key": np.array([r[0] for r in rows], dtype=np.int64),
            "name": pd.Series([r[1] for r in rows], dtype=STR),
            "step": np.array([r[2] for r in rows], dtype=np.int64),
            "value": np.array([r[3] for r in rows], dtype=np.float64),
            "raw": pd.Series([r[4] for r in rows], dtype=object),
        }
    )
    return apply_raw(df, ["value"]).sort_values(["run_key", "name"], ignore_index=True)


def connect(db: str | os.PathLike | None = None, readonly: bool = False) -> Store:
    """Open ``db`` (path or SQLAlchemy URL; default ``$GRADTRACE_DB`` or ``./gradtrace.db``).

    ``readonly=True`` never writes, even to migrate, and is what the dashboard uses.
    """
    return Store(open_database(db, readonly=readonly))
