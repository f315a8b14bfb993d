"""Reading runs back as pandas DataFrames.

    >>> store = connect("runs.db")                       # doctest: +SKIP
    >>> store.runs()[["name", "status", "steps", "metric.loss"]]   # doctest: +SKIP
    >>> run = store.run("moons")  # an id, a unique id prefix, or a name  # doctest: +SKIP
    >>> run.metrics().loss.plot()                        # doctest: +SKIP

Every read is a bound, parameterized SQLAlchemy statement; names given by the
user never become SQL text.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.errors import (
    AmbiguousRun,
    GradtraceError,
    NotAGradtraceDatabase,
    RunNotFound,
)
from gradtrace.tracer.read.frames import STR, gc_paused
from gradtrace.tracer.read.runfacts import as_utc, effective_status, last_metric_values
from gradtrace.tracer.storage.db import describe, open_database, resolve_url, tolerant, writing
from gradtrace.tracer.storage.integrity import damage_error
from gradtrace.tracer.storage.models import Run
from gradtrace.tracer.validate import NAME_MAX, check, safe_text, shown, text_problem
from sqlalchemy.engine import URL, Engine

if TYPE_CHECKING:
    from gradtrace.tracer.read.runview import RunView


def public_url(url: URL) -> URL:
    """The URL the user gave: a read-only SQLite engine's ``file:...?mode=ro`` URI
    becomes the plain file path again (for messages)."""
    name = url.database or ""
    if url.get_backend_name() == "sqlite" and name.startswith("file:") and url.query.get("uri"):
        return URL.create(url.drivername, database=unquote(name[len("file:") :].split("?", 1)[0]))
    return url


class Store:
    """A connection to one gradtrace database. Made by :func:`connect`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = public_url(engine.url)

    def __repr__(self) -> str:
        return f"<Store {self.where}>"

    @property
    def where(self) -> str:
        """The database, for messages and titles: a file path, or the URL without password."""
        return describe(self.url)

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
        with self.snapshot() as fetch:
            return [fetch(stmt) for stmt in stmts]

    @contextmanager
    def snapshot(self) -> Iterator[Callable[[sa.Executable], tuple[list[str], list[tuple]]]]:
        """A ``fetch`` whose statements all see one snapshot, for a read whose next
        statement depends on what the previous one returned.

            >>> with store.snapshot() as fetch:                 # doctest: +SKIP
            ...     keys, rows = fetch(sa.select(Step.step))
        """
        with gc_paused(), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one snapshot for the whole transaction
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():

                def read(stmt: sa.Executable) -> tuple[list[str], list[tuple]]:
                    result = conn.execute(stmt)
                    keys = list(result.keys())
                    cursor = getattr(result, "cursor", None)
                    try:
                        rows = cursor.fetchall() if cursor is not None else list(map(tuple, result))
                    except sqlite3.DatabaseError as e:  # the driver's own: SQLAlchemy's
                        named = damage_error(describe(self.url), e)  # handler never saw it
                        raise e if named is None else named from e
                    result.close()
                    return keys, rows

                def fetch(stmt: sa.Executable) -> tuple[list[str], list[tuple]]:
                    return tolerant(conn, lambda: read(stmt))

                yield fetch

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
        the last heartbeat), ``steps`` (int64, steps logged), ``diverged_at_step``
        (Int64: the step of the run's first NaN/inf origin, ``first_nonfinite().step``,
        from the writer's totals; <NA> for a finite run), then the last value of
        each metric as ``metric.<name>`` (float64) and the config flattened into
        ``config.<key>`` columns (nested keys joined with dots).

        Reads the totals the writer keeps (one row per run and metric), so its
        cost grows with the number of runs, not with how long they ran.
        """
        stmt = sa.select(Run.__table__).order_by(Run.started_at.desc(), Run.run_key.desc())
        if experiment is not None:
            check("experiment", experiment)
            stmt = stmt.where(Run.experiment == experiment)
        with self.engine.connect() as conn:
            # safe_text: one row with text no check refused when it was written (a
            # lone surrogate in its config) must not hide every run.
            rows = [
                {k: safe_text(v) for k, v in row._mapping.items()}
                for row in tolerant(conn, lambda: conn.execute(stmt).all())
            ]
        now = datetime.now(UTC)
        records = []
        for m in rows:
            started, ended = as_utc(m["started_at"]), as_utc(m["ended_at"])
            last = ended or as_utc(m["heartbeat_at"]) or started
            status = effective_status(
                m["status"],
                m["host"],
                m["pid"],
                m["pid_started"],
                m["heartbeat_at"],
                now,
                m["pid_ns"],
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
            df["diverged_at_step"] = pd.array([], dtype="Int64")
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
        """A run by exact id, exact name, unique id prefix or name prefix (in that
        order: an exact match wins over a prefix). The reference is plain text:
        ``%``, ``_`` and quotes match themselves.

        A name stands for the most recent run with that name (scripts are re-run
        under one name all the time); the returned view's ``note`` then says how
        many older runs share it. Ids and id prefixes stay exact: a prefix that
        matches two runs raises :class:`AmbiguousRun`.

            >>> store.run("moons").note        # doctest: +SKIP
            "'moons' names 3 runs; this is the most recent (a1b2c3d4), ..."
        """
        from gradtrace.tracer.read.runview import RunView

        if not isinstance(ref, str) or not ref.strip():
            raise RunNotFound(f"a run reference must be a non-empty string, got {shown(ref)}")
        problem = text_problem(ref)
        if problem or len(ref) > NAME_MAX:
            problem = problem or f"is {len(ref)} characters long, longer than any id or name"
            raise RunNotFound(
                f"the run reference {shown(ref)} {problem}; pass an id, an id prefix or a "
                "name (`gradtrace runs` lists them)"
            )
        cols = sa.select(Run.run_key, Run.id, Run.name, Run.started_at)

        def prefix(column: sa.ColumnElement, text: str) -> sa.ColumnElement:
            # Not LIKE: case-sensitive on both backends, and no pattern to grow complex.
            return sa.func.substr(column, 1, len(text)) == text

        stages = [
            ("id", cols.where(Run.id == ref.lower())),
            ("name", cols.where(Run.name == ref)),
            ("id prefix", cols.where(prefix(Run.id, ref.lower()))),
            ("name prefix", cols.where(prefix(Run.name, ref))),
        ]
        newest_first = (Run.started_at.desc(), Run.run_key.desc())
        with self.engine.connect() as conn:
            for what, stmt in stages:
                ordered = stmt.order_by(*newest_first).limit(6)
                found = tolerant(conn, lambda: conn.execute(ordered).all())  # noqa: B023
                if found and what == "name":
                    _no_id_prefix_shadowed(conn, ref, found[0], cols.where(prefix(Run.id, ref)))
                if len(found) == 1:
                    return RunView(self, found[0].run_key)
                if len(found) > 1 and what.startswith("name") and _one_name(found):
                    view = RunView(self, found[0].run_key)
                    view.note = _older_note(conn, found[0])
                    return view
                if len(found) > 1:
                    listed = ", ".join(
                        f"{r.id[:8]} ({r.name!r}, started {as_utc(r.started_at):%Y-%m-%d %H:%M})"
                        for r in found[:5]
                    )
                    count = "more than 5" if len(found) > 5 else str(len(found))
                    raise AmbiguousRun(
                        f"{shown(ref)} matches {count} runs by {what}: {listed}; "
                        "pass more characters of the id, or the whole name"
                    )
        raise RunNotFound(
            f"no run matches {shown(ref)} (by id, id prefix, name or name prefix) in "
            f"{self.where}; `gradtrace runs` lists them"
        )

    def diff(self, a: str, b: str, rtol: float = 0.0, atol: float = 0.0):
        """Where two runs part: settings, shapes, first differing step and node.

            >>> d = store.diff("moons", "moons-lr2")        # doctest: +SKIP
            >>> d.first_param_step, d.first_node            # doctest: +SKIP

        Bit-exact by default; see :mod:`gradtrace.tracer.analysis.diff`.
        """
        from gradtrace.tracer.analysis.diff import diff_runs

        return diff_runs(self.run(a), self.run(b), rtol=rtol, atol=atol)

    def delete_run(self, ref: str) -> None:
        """Remove a run and everything recorded for it (needs a writable store)."""
        view = self.run(ref)
        try:
            with writing(self.engine).begin() as conn:
                conn.execute(sa.delete(Run).where(Run.run_key == view.key))
        except sa.exc.DBAPIError as e:
            if not _refused_as_readonly(e):
                raise
            raise GradtraceError(
                f"cannot delete run {shown(view.name)} ({view.id[:8]}): {describe(self.url)} "
                "was opened read-only; open it with connect(db) to delete runs"
            ) from None


_HEX = frozenset("0123456789abcdef")
# A reference this short is taken as a name when a run has it: one or two hex letters
# ("a", "b1") would otherwise collide with some id by chance in most databases.
ID_PREFIX_MIN = 4


def _no_id_prefix_shadowed(conn: sa.Connection, ref: str, named: sa.Row, by_id: sa.Select) -> None:
    """A name that is also a prefix of another run's id would hide that run from its
    id prefix: refuse it, naming both (ids are lowercase hex, so most names cannot).
    Names shorter than ``ID_PREFIX_MIN`` are names, whatever ids start with them."""
    if len(ref) < ID_PREFIX_MIN or not set(ref) <= _HEX:
        return
    other = conn.execute(by_id.where(Run.run_key != named.run_key).limit(1)).first()
    if other is not None:
        raise AmbiguousRun(
            f"{shown(ref)} is the name of run {named.id[:8]} and a prefix of the id of run "
            f"{other.id[:8]} ({shown(other.name)}); pass more characters of the id, or "
            f"run {named.id[:8]}'s id"
        )


def _refused_as_readonly(e: sa.exc.DBAPIError) -> bool:
    text = str(e.orig)
    return "readonly database" in text or "read-only transaction" in text


def _one_name(found: list) -> bool:
    return len({r.name for r in found}) == 1


def _older_note(conn: sa.Connection, newest: sa.Row) -> str:
    """The note on a run found by a name several runs share."""
    total = conn.execute(
        sa.select(sa.func.count()).select_from(Run).where(Run.name == newest.name)
    ).scalar_one()
    return (
        f"{newest.name!r} names {total} runs; this is the most recent ({newest.id[:8]}, "
        f"started {as_utc(newest.started_at):%Y-%m-%d %H:%M}); pass an id for an older one"
    )


def _utc_times(values: list[datetime | None]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("us")


def connect(db: str | os.PathLike | None = None, readonly: bool = False) -> Store:
    """Open ``db`` (path or SQLAlchemy URL; default ``$GRADTRACE_DB`` or ``./gradtrace.db``).

    ``readonly=True`` never writes, even to migrate, and is what the dashboard uses.
    A reader never creates a database: a missing file is an error (``record``
    creates one).
    """
    check("readonly", readonly)
    url = resolve_url(db)
    name = url.database if url.get_backend_name() == "sqlite" else None
    if name and not name.startswith("file:") and not os.path.exists(name):
        raise NotAGradtraceDatabase(
            f"no database at {name}; check the path, or record a run first "
            f"(gradtrace demo --db {name})"
        )
    return Store(open_database(db, readonly=readonly))
