"""Cheap integrity on open, the full check only when it can find something.

    >>> key = mark_open(engine)          # a recorder starts writing   # doctest: +SKIP
    >>> mark_closed(engine, key)         # ... and ends cleanly        # doctest: +SKIP

SQLite's ``PRAGMA quick_check`` reads every page, so running it on every open
made opening cost time in proportion to the file. Instead:

=============================  ==============================================
every open                     header, page size, file size, schema revision
a writer died mid-run          full ``quick_check`` on the next open: its row
                               in ``writers`` (the clean-close mark) outlives it
``gradtrace db check``         full ``quick_check``, always
a damaged page met later       :class:`NotAGradtraceDatabase` naming the file,
                               from the first read or write that reaches it
=============================  ==============================================
"""

from __future__ import annotations

import os
import socket
import sqlite3
from datetime import UTC, datetime

import sqlalchemy as sa
from gradtrace.tracer.errors import NotAGradtraceDatabase
from gradtrace.tracer.storage.models import WriterMark
from gradtrace.tracer.storage.procinfo import is_alive, process_start_time
from sqlalchemy import event
from sqlalchemy.engine import Engine

_DAMAGE = ("malformed", "not a database", "disk image")
# Files this process found damaged after opening them: a writer that met damage
# leaves its mark, so the next open runs the full check and refuses the file.
DAMAGED: set[str] = set()


def mark_open(engine: Engine) -> int:
    """Record that this process writes to the database; returns the mark's key."""
    pid = os.getpid()
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(WriterMark)
            .values(
                host=socket.gethostname(),
                pid=pid,
                pid_started=process_start_time(pid),
                opened_at=datetime.now(UTC),
            )
            .returning(WriterMark.writer_key)
        ).scalar_one()


def mark_closed(engine: Engine, key: int, where: str) -> None:
    """This writer is done and everything it wrote is committed (unless it met damage)."""
    if where in DAMAGED:
        return
    with engine.begin() as conn:
        conn.execute(sa.delete(WriterMark).where(WriterMark.writer_key == key))


def dead_writers(conn: sa.Connection) -> list[int]:
    """Keys of marks whose process is gone without closing (same host only: a
    writer on another host cannot be checked from here and counts as alive)."""
    rows = conn.execute(
        sa.select(WriterMark.writer_key, WriterMark.pid, WriterMark.pid_started).where(
            WriterMark.host == socket.gethostname()
        )
    ).all()
    return [r.writer_key for r in rows if not is_alive(r.pid, r.pid_started)]


def forget_writers(conn: sa.Connection, keys: list[int]) -> None:
    """Drop dead writers' marks once a full check has passed."""
    if keys:
        conn.execute(sa.delete(WriterMark).where(WriterMark.writer_key.in_(keys)))


def name_damage(engine: Engine, where: str) -> None:
    """Make a damaged page met by any later read or write raise an error naming the file."""

    @event.listens_for(engine, "handle_error")
    def _damaged(context) -> None:
        err = context.original_exception
        named = damage_error(where, err)
        if named is not None:
            raise named from err


def damage_error(where: str, err: BaseException) -> NotAGradtraceDatabase | None:
    """The error naming ``where`` for a SQLite error that says the file is damaged
    (None for any other error); for reads that fetch from the driver's cursor,
    past SQLAlchemy's error handling."""
    text = str(err)
    if not (isinstance(err, sqlite3.DatabaseError) and any(d in text for d in _DAMAGE)):
        return None
    DAMAGED.add(where)
    return NotAGradtraceDatabase(
        f"{where} is damaged: SQLite says {text!r} reading or writing it; stop "
        f"writing to it, check it with `gradtrace db check --db {where}` and "
        "restore it from a copy"
    )
