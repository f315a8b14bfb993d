"""Reading runs back as pandas DataFrames.

    >>> store = connect("runs.db")                       # doctest: +SKIP
    >>> store.runs()[["name", "status", "steps", "metric.loss"]]   # doctest: +SKIP
    >>> run = store.run("moons")          # an id, a unique id prefix, or a name
    >>> run.metrics().loss.plot()                        # doctest: +SKIP

Every read is a bound, parameterized SQLAlchemy statement; names given by the
user never become SQL text.
"""

from __future__ import annotations

import os
import socket
import struct
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracer.db import describe, open_database, writing
from tracer.errors import AmbiguousRun, RunNotFound
from tracer.models import Metric, Run
from tracer.procinfo import is_alive

if TYPE_CHECKING:
    from tracer.runview import RunView

STALE_AFTER = timedelta(hours=1)  # a run on another host silent this long reads as crashed
STATUSES = ("running", "finished", "failed", "interrupted", "crashed")
RUN_COLUMNS = (
    "id",
    "name",
    "experiment",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "steps",
)


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
    """SQLite hands back naive datetimes; gradtrace writes UTC."""
    if ts is None or pd.isna(ts):
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def apply_raw(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Put back the exact bits of NaN and -0.0 kept in the ``raw`` column."""
    if "raw" not in df:
        return df
    mask = df["raw"].notna().to_numpy()
    if mask.any():
        width = len(columns)
        fmt = struct.Struct(f"<{width}d")
        exact = np.array([fmt.unpack(b[: 8 * width]) for b in df["raw"][mask]], dtype=np.float64)
        for j, col in enumerate(columns):
            values = df[col].to_numpy(dtype=np.float64, copy=True)
            values[mask] = exact[:, j]
            df[col] = values
    return df.drop(columns="raw")


class Store:
    """A connection to one gradtrace database. Made by :func:`connect`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = engine.url

    def __repr__(self) -> str:
        return f"<Store {describe(self.url)}>"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, stmt: sa.Executable, params: dict | None = None) -> pd.DataFrame:
        """Run a SQLAlchemy statement and return a DataFrame (the one door to SQL)."""
        with self.engine.connect() as conn:
            result = conn.execute(stmt, params or {})
            keys = list(result.keys())
            columns = list(zip(*result.tuples().all(), strict=True)) or [()] * len(keys)
        # Column by column: pandas probes each Row object otherwise (10x slower).
        return pd.DataFrame({k: list(col) for k, col in zip(keys, columns, strict=True)})

    # -- runs --------------------------------------------------------------
    def runs(self, experiment: str | None = None) -> pd.DataFrame:
        """One row per run, newest first: identity, status (crashed detected), timing,
        steps, the last value of each metric as ``metric.<name>``, and the config
        flattened into ``config.<key>`` columns."""
        stmt = sa.select(Run.__table__).order_by(Run.started_at.desc(), Run.run_key.desc())
        if experiment is not None:
            stmt = stmt.where(Run.experiment == experiment)
        with self.engine.connect() as conn:
            rows = [row._mapping for row in conn.execute(stmt)]
        if not rows:
            return pd.DataFrame(columns=list(RUN_COLUMNS))
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
                    "run_key": m["run_key"],
                    "config": m["config"] or {},
                }
            )
        df = pd.DataFrame.from_records(records)
        df["started_at"] = pd.to_datetime(df["started_at"], utc=True)
        df["ended_at"] = pd.to_datetime(df["ended_at"], utc=True)
        last = self._last_metrics(df["run_key"].tolist())
        if not last.empty:
            df = df.merge(last, how="left", left_on="run_key", right_index=True)
        config = pd.json_normalize(df["config"].tolist(), sep=".").add_prefix("config.")
        config.index = df.index
        df = pd.concat([df.drop(columns="config"), config], axis=1)
        return df.drop(columns="run_key").reset_index(drop=True)

    def _last_metrics(self, run_keys: list[int]) -> pd.DataFrame:
        last_step = (
            sa.select(Metric.run_key, Metric.name, sa.func.max(Metric.step).label("step"))
            .where(Metric.run_key.in_(run_keys))
            .group_by(Metric.run_key, Metric.name)
            .subquery()
        )
        stmt = sa.select(Metric.run_key, Metric.name, Metric.value, Metric.raw).join(
            last_step,
            sa.and_(
                Metric.run_key == last_step.c.run_key,
                Metric.name == last_step.c.name,
                Metric.step == last_step.c.step,
            ),
        )
        df = apply_raw(self.read(stmt), ["value"])
        if df.empty:
            return pd.DataFrame()
        wide = df.pivot(index="run_key", columns="name", values="value")
        wide.columns = [f"metric.{c}" for c in wide.columns]
        return wide.astype(np.float64)

    def run(self, ref: str) -> RunView:
        """A run by exact id, exact name, unique id prefix or unique name prefix."""
        from tracer.runview import RunView

        if not isinstance(ref, str) or not ref:
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
                        f"{r.id[:8]} ({r.name}, {as_utc(r.started_at):%Y-%m-%d %H:%M})"
                        for r in found[:5]
                    )
                    more = " and more" if len(found) > 5 else ""
                    raise AmbiguousRun(
                        f"{ref!r} matches several runs by {what}: {listed}{more}; "
                        "pass a longer id prefix"
                    )
        raise RunNotFound(
            f"no run matches {ref!r} in {describe(self.url)}; `gradtrace runs` lists them"
        )

    def delete_run(self, ref: str) -> None:
        """Remove a run and everything recorded for it (needs a writable store)."""
        view = self.run(ref)
        with writing(self.engine).begin() as conn:
            conn.execute(sa.delete(Run).where(Run.run_key == view.key))


def connect(db: str | os.PathLike | None = None, readonly: bool = False) -> Store:
    """Open ``db`` (path or SQLAlchemy URL; default ``$GRADTRACE_DB`` or ``./gradtrace.db``).

    ``readonly=True`` never writes, even to migrate, and is what the dashboard uses.
    """
    return Store(open_database(db, readonly=readonly))
