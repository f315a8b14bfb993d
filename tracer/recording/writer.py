"""The write path: one transaction per step (or group of steps), bulk inserts at the driver.

    >>> writer = Writer(engine, run_key)                        # doctest: +SKIP
    >>> writer.submit(StepBatch(step=0, wall_time=time.time(), metrics=[...]))  # doctest: +SKIP

Rows go to the DBAPI cursor as tuples through ``executemany`` (SQLite) or
``COPY`` (PostgreSQL): a list of dicts through SQLAlchemy Core costs ~8x more
per row. The statements are compiled from the table models, never assembled
from user text. :class:`BackgroundWriter` does the same on a thread fed by a
bounded queue, so SQLite's I/O (which releases the GIL) overlaps training.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from gradtrace.tracer.errors import RecorderError
from gradtrace.tracer.recording.capture import Shape, Snapshot
from gradtrace.tracer.recording.grouped import group_rows
from gradtrace.tracer.storage.codec import ZSTD
from gradtrace.tracer.storage.models import (
    Graph,
    Metric,
    ParamGrads,
    ParamValues,
    Run,
    Step,
    Trace,
    Update,
)
from gradtrace.tracer.storage.totals import metric_totals, metric_upsert_sql
from sqlalchemy.engine import Connection, Engine

COPY_MIN_ROWS = 200  # below this, executemany is as fast as COPY on PostgreSQL


@dataclass
class StepBatch:
    """Everything one ``run.log`` produced, ready to be written."""

    step: int
    wall_time: float
    metrics: list[tuple[Any, ...]] = field(default_factory=list)
    updates: Sequence[tuple[Any, ...]] = field(default_factory=list)  # may build on use
    snapshot: Snapshot | None = None
    params: np.ndarray | None = None  # (2, n): every watched parameter's value and grad
    steps_logged: int = 0
    # The step the run's totals charge their first NaN/inf to: this step, or the
    # previous one when its update made a parameter non-finite (the origin's step).
    nonfinite_step: int | None = None


@dataclass
class Final:
    """The run's last words: status, end time, error text, and the last updates."""

    status: str
    error: str | None
    updates: Sequence[tuple[Any, ...]] = field(default_factory=list)
    nonfinite_step: int | None = None  # the last update's result is NaN/inf


class _Statements:
    """Positional INSERTs compiled once from the models for this engine's dialect."""

    def __init__(self, engine: Engine):
        self.postgres = engine.dialect.name == "postgresql"
        dialect = type(engine.dialect)(paramstyle="format" if self.postgres else "qmark")
        self.preparer = dialect.identifier_preparer
        self.sql = {
            model.__tablename__: str(model.__table__.insert().compile(dialect=dialect))
            for model in (Metric, Update, Step, Trace, ParamValues, ParamGrads)
        }
        self.totals = metric_upsert_sql(engine.dialect)

    def insert(self, conn: Connection, model: type, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        table = model.__table__
        if self.postgres and len(rows) >= COPY_MIN_ROWS:
            cols = ", ".join(self.preparer.quote(c.name) for c in table.columns)
            copy_sql = f"COPY {self.preparer.format_table(table)} ({cols}) FROM STDIN"
            with conn.connection.driver_connection.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        conn.exec_driver_sql(self.sql[table.name], rows)


class Writer:
    """Writes each batch in its own transaction, in the calling thread.

    Float arrays are encoded (compressed) here, at write time: on the writer's
    thread for a :class:`BackgroundWriter`. ``codec`` is one of ``tracer.codec``'s.
    """

    def __init__(self, engine: Engine, run_key: int, codec: int = ZSTD):
        self.engine = engine
        self.run_key = run_key
        self.codec = codec
        self.stmts = _Statements(engine)

    def submit(self, item: StepBatch | Final) -> None:
        self._write([item])

    def close(self) -> None:
        """Wait until everything submitted is committed."""

    # -- the transaction ---------------------------------------------------
    def _write(self, items: list[StepBatch | Final]) -> None:
        shapes = [
            i.snapshot.shape
            for i in items
            if isinstance(i, StepBatch) and i.snapshot is not None and i.snapshot.shape.key is None
        ]
        try:
            with self.engine.begin() as conn:
                steps: list[StepBatch] = []
                for item in items:
                    if isinstance(item, Final):
                        self._steps(conn, steps)
                        steps = []
                        self._final(conn, item)
                    else:
                        steps.append(item)
                self._steps(conn, steps)
        except BaseException:
            # The graphs inserted by this transaction were rolled back with it: a
            # later step of the same shape must insert its graph again, not point
            # at a graph_key that does not exist.
            for shape in shapes:
                shape.key = None
            raise

    def _steps(self, conn: Connection, batches: list[StepBatch]) -> None:
        """Consecutive steps: their rows table by table (``grouped.py``), the totals once."""
        if not batches:
            return
        for batch in batches:
            snap = batch.snapshot
            if snap is not None and snap.shape.key is None:
                self._graph(conn, snap.shape)
        group = group_rows(self.run_key, batches, self.codec)
        for model, rows in group.tables.items():
            self.stmts.insert(conn, model, rows)
        if group.metrics:
            conn.exec_driver_sql(self.stmts.totals, metric_totals(group.metrics))
        totals: dict[str, Any] = {
            # Counted in SQL: a step the database refused is not counted.
            "steps": Run.steps + group.steps,
            "heartbeat_at": datetime.now(UTC),
        }
        if group.nonfinite_step is not None:
            totals["first_nonfinite_step"] = sa.func.coalesce(
                Run.first_nonfinite_step, group.nonfinite_step
            )
        conn.execute(sa.update(Run).where(Run.run_key == self.run_key).values(**totals))

    def _graph(self, conn: Connection, shape: Shape) -> None:
        shape.key = conn.execute(
            sa.insert(Graph)
            .values(
                run_key=self.run_key,
                fingerprint=shape.fingerprint(),
                n_nodes=shape.n_nodes,
                first_step=shape.first_step,
                **shape.columns(),
            )
            .returning(Graph.graph_key)
        ).scalar_one()

    def _final(self, conn: Connection, final: Final) -> None:
        if final.updates:
            # Tolerates rows already there: a second Ctrl-C (the first is held
            # back until log() is done) landing after a step's commit but before
            # log() returns makes the recorder hand the same update over again.
            conn.execute(_insert_ignore(conn, Update), [_as_dict(Update, r) for r in final.updates])
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "status": final.status,
            "error": storable(final.error),
            "ended_at": now,
            "heartbeat_at": now,
        }
        if final.nonfinite_step is not None:
            values["first_nonfinite_step"] = sa.func.coalesce(
                Run.first_nonfinite_step, final.nonfinite_step
            )
        conn.execute(sa.update(Run).where(Run.run_key == self.run_key).values(**values))


def storable(text: str | None) -> str | None:
    r"""``text`` as both backends can store it: a NUL (PostgreSQL refuses it) and a
    lone surrogate (not UTF-8) become visible escapes, so an exception's message
    can never keep its run from being closed.

        >>> storable("a\x00b\udc80")
        'a\\x00b\\udc80'
    """
    if text is None:
        return None
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _as_dict(model: type, row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(model.__table__.columns.keys(), row, strict=True))


def _insert_ignore(conn: Connection, model: type) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING for this connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing()


_STOP = object()
LINGER_S = 0.05  # the longest a step waits for company before its commit starts


class BackgroundWriter(Writer):
    """A :class:`Writer` on its own thread behind a bounded queue.

    ``submit`` blocks while ``queue_size`` steps are handed over and not yet
    committed, whether still queued or in the thread's open transaction: that is
    the most a kill -9 can lose of steps whose ``log()`` returned (back-pressure
    also keeps memory bounded). The thread commits whatever has queued up in one
    transaction (group commit), and while steps keep coming it waits up to
    ``linger`` seconds (default :data:`LINGER_S`) for half the permits' worth:
    fast steps (a jit replay) are written a group at a time, one statement per
    table (``grouped.py``), which costs the training thread's GIL less than a
    transaction a step. When a group fails, its steps are committed one
    by one, so one step the database refuses loses that step alone (the previous
    step's update, which travels with it, is still stored). The error is raised
    by the next ``submit`` (and, if no ``submit`` came after it, by ``close``),
    and a run that lost steps ends ``failed`` naming them.
    """

    def __init__(
        self,
        engine: Engine,
        run_key: int,
        queue_size: int = 16,
        group: int = 16,
        codec: int = ZSTD,
        linger: float | None = None,
    ):
        super().__init__(engine, run_key, codec)
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.queue: queue.Queue = queue.Queue()
        # One permit a step handed over and not committed: a step's permit comes
        # back only once its transaction has ended.
        self.uncommitted = threading.BoundedSemaphore(queue_size)
        self.group = group
        # Wait for up to half the permits: fewer, fuller transactions cost the
        # training thread less GIL a step, and the other half lets it go on meanwhile.
        self.fill = min(group, max(1, queue_size // 2))
        self.linger = LINGER_S if linger is None else linger
        self.enough = threading.Event()  # fill steps queued, or the run ends
        self.error: BaseException | None = None  # not yet reported to the caller
        self.lost: list[int] = []  # steps the database refused
        self.first_error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="gradtrace-writer", daemon=True)
        self.thread.start()

    def submit(self, item: StepBatch | Final) -> None:
        if isinstance(item, StepBatch):
            self._raise()
            self.uncommitted.acquire()
        self.queue.put(item)
        # The writer waits for a group's worth on an Event, woken once a group, not
        # once a step: each wake-up makes this thread hand it the GIL.
        if not isinstance(item, StepBatch) or self.queue.qsize() >= self.fill - 1:
            self.enough.set()

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(_STOP)
            self.enough.set()
            self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            raise RecorderError(
                f"the background writer could not store step(s) {_steps(self.lost)}: {err}"
            ) from err

    def _run(self) -> None:
        stop = False
        while not stop:
            items = self._take()
            if _STOP in items:
                stop = True
                items = [i for i in items if i is not _STOP]
            if not items:
                continue
            try:
                self._write([self._marked(i) for i in items])
            except BaseException:
                # One bad step must not sink the group: commit each on its own.
                for item in items:
                    try:
                        self._write([self._marked(item)])
                    except BaseException as e:  # handed to the training thread
                        self._failed(item, e)
                        self._salvage(item)
            finally:
                for item in items:
                    if isinstance(item, StepBatch):
                        self.uncommitted.release()

    def _take(self) -> list[Any]:
        """The next group: what has queued up, after waiting (at most ``linger``
        seconds, without the GIL) until ``submit`` says ``fill`` steps are there."""
        items = [self.queue.get()]
        if isinstance(items[0], StepBatch) and self.fill > 1:
            self.enough.wait(self.linger)
        self.enough.clear()  # a set() racing this is for items drained just below
        while len(items) < self.group:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _salvage(self, item: StepBatch | Final) -> None:
        """Store the previous step's update that a refused step carried (it was
        known when this step was logged); that step may be lost too: then no row."""
        if not isinstance(item, StepBatch) or not item.updates:
            return
        with contextlib.suppress(Exception), self.engine.begin() as conn:  # its error is reported
            conn.execute(_insert_ignore(conn, Update), [_as_dict(Update, r) for r in item.updates])

    def _failed(self, item: StepBatch | Final, e: BaseException) -> None:
        if isinstance(item, StepBatch):
            self.lost.append(item.step)
        self.first_error = self.first_error or e
        self.error = e

    def _marked(self, item: StepBatch | Final) -> StepBatch | Final:
        """The final status of a run that lost steps: ``failed``, naming them."""
        if not isinstance(item, Final) or not self.lost:
            return item
        lost = f"gradtrace: step(s) {_steps(self.lost)} could not be stored: {self.first_error}"
        status = "failed" if item.status == "finished" else item.status
        error = f"{item.error}\n{lost}" if item.error else lost
        return replace(item, status=status, error=error)  # keeps nonfinite_step


def _steps(steps: list[int]) -> str:
    shown = ", ".join(map(str, steps[:10]))
    return shown + (f" and {len(steps) - 10} more" if len(steps) > 10 else "")
