"""Looking at a SQLite file without changing a byte of it or of its side files.

    >>> look("runs.db").tables                              # doctest: +SKIP
    ('alembic_version', 'graph_nodes', ...)

An ordinary SQLite connection is not a pure reader: the first one to open a
file with a hot rollback journal rolls it back, the last one to close a WAL
file checkpoints it and deletes the ``-wal``, and even a read-only one rewrites
the ``-shm`` index or creates ``-wal``/``-shm`` beside the file. So before
gradtrace opens a file for real it looks here: the main file is read with
``immutable=1`` (SQLite touches nothing), and when the tables live only in a
side file (a ``-wal`` never checkpointed, a hot ``-journal``) a copy of the file
and its side file is read instead. Only a file found to be gradtrace's, or
empty, is then opened normally.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gradtrace.tracer.errors import NotAGradtraceDatabase


@dataclass(frozen=True)
class Look:
    """What a SQLite file holds, seen without touching it."""

    path: Path
    tables: tuple[str, ...]
    revision: str | None  # alembic_version, if there is one
    wal: bool  # a non-empty -wal beside it
    hot_journal: bool  # a non-empty -journal beside it: a transaction never finished

    @property
    def foreign(self) -> bool:
        """Holds tables, but not gradtrace's (a schema downgraded to base, an empty
        ``alembic_version``, is an empty gradtrace database)."""
        downgraded = self.tables == ("alembic_version",) and self.revision is None
        return bool(self.tables) and "runs" not in self.tables and not downgraded


def immutable_uri(path: Path) -> str:
    """A URI that makes SQLite read ``path`` as it is: no locks, no side files."""
    return f"file:{quote(str(path))}?immutable=1"


def side(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _read(uri: str) -> tuple[tuple[str, ...], str | None]:
    conn = sqlite3.connect(uri, uri=True)
    try:
        tables = tuple(
            sorted(
                r[0]
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not r[0].startswith("sqlite_")
            )
        )
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        return tables, revision
    finally:
        conn.close()


def unreadable(path: Path, e: Exception) -> NotAGradtraceDatabase:
    return NotAGradtraceDatabase(
        f"{path} is not a readable SQLite database ({e}); it was left untouched; "
        "restore it from a copy or pass another file name"
    )


def look(path: Path) -> Look:
    """The tables and revision of the SQLite file ``path``, touching nothing.

    Raises NotAGradtraceDatabase (naming the file) when SQLite cannot read it.
    """
    wal = _nonempty(side(path, "-wal"))
    hot = _nonempty(side(path, "-journal"))
    tables, revision = (), None
    for attempt in range(3):
        try:
            tables, revision = _read(immutable_uri(path))
            break
        except sqlite3.DatabaseError as e:
            if not (wal or hot):
                raise unreadable(path, e) from None
            # A live writer's checkpoint may be rewriting the page just read: again.
            time.sleep(0.01 * (attempt + 1))
    if (wal or hot) and not tables:
        # What the file holds is in its side file: read a copy of both.
        with tempfile.TemporaryDirectory(prefix="gradtrace-look-") as tmp:
            copy = Path(tmp) / "db"
            shutil.copyfile(path, copy)
            for suffix, present in (("-wal", wal), ("-journal", hot)):
                if present:
                    shutil.copyfile(side(path, suffix), side(copy, suffix))
            try:
                tables, revision = _read(f"file:{quote(str(copy))}")
            except sqlite3.DatabaseError as e:
                raise unreadable(path, e) from None
    return Look(path, tables, revision, wal, hot)


def writable(path: Path) -> bool:
    """Can SQLite write ``path`` and create its side files? (False on a read-only
    filesystem, or for a file or folder without write permission.)"""
    folder_ok = os.access(path.parent, os.W_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def retry_locked(statement: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run ``statement``, retrying while another connection holds a lock.

    Switching to WAL needs the file to itself, and SQLite answers "database is
    locked" at once instead of waiting (its busy handler is not called, so it
    cannot deadlock): processes opening a new database together take turns here.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
