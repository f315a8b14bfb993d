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

Those handles are opened only while this process has no connection to the file
(:func:`in_use`): closing any handle on a SQLite file drops every POSIX lock the
process holds on it, so another process would take itself for the last
connection and checkpoint and delete the ``-wal`` under the live one (SQLite's
"How To Corrupt An SQLite Database File", section 2.2). SQLite's own connections,
immutable ones included, share one handle per file and are safe.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gradtrace.tracer.errors import NotAGradtraceDatabase
from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class Look:
    """What a SQLite file holds, seen without touching it."""

    path: Path
    tables: tuple[str, ...]
    revision: str | None  # alembic_version, if there is one
    wal: bool  # a non-empty -wal beside it
    hot_journal: bool  # a non-empty -journal beside it: a transaction never finished


# engine -> [file key, DBAPI connections it holds open]; an engine that is
# garbage-collected takes its entry with it.
_CONNECTIONS: weakref.WeakKeyDictionary[Engine, list] = weakref.WeakKeyDictionary()
_COUNT_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | str:
    """One key per file, whatever path names it (links, relative paths)."""
    try:
        st = path.stat()
    except OSError:
        return str(path.resolve())
    return (st.st_dev, st.st_ino)


def track_connections(engine: Engine, path: Path) -> None:
    """Count the connections ``engine`` holds open on ``path`` (see :func:`in_use`)."""
    entry = [_file_key(path), 0]
    _CONNECTIONS[engine] = entry

    def opened(*_args) -> None:
        key = _file_key(path)  # the file exists now, if this connection created it
        with _COUNT_LOCK:
            entry[0] = key
            entry[1] += 1

    def closed(*_args) -> None:
        with _COUNT_LOCK:
            entry[1] -= 1

    event.listen(engine, "connect", opened)
    event.listen(engine, "close", closed)
    event.listen(engine, "close_detached", closed)


def in_use(path: Path) -> bool:
    """Does this process hold a SQLite connection to ``path``? Then no handle of our
    own may be opened on it: closing it would drop those connections' locks."""
    key = _file_key(path)
    with _COUNT_LOCK:
        return any(k == key and n > 0 for k, n in list(_CONNECTIONS.values()))


def open_file(path: Path, mode: str = "rb"):
    """A plain handle on ``path``: only for files :func:`in_use` says are not open."""
    return path.open(mode)


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
    if (wal or hot) and not tables and not in_use(path):
        # What the file holds is in its side file: read a copy of both (never while
        # this process has it open: copying opens and closes a handle on it).
        with tempfile.TemporaryDirectory(prefix="gradtrace-look-") as tmp:
            copy = Path(tmp) / "db"
            for suffix, present in (("", True), ("-wal", wal), ("-journal", hot)):
                if present:
                    with open_file(side(path, suffix)) as src, side(copy, suffix).open("wb") as dst:
                        shutil.copyfileobj(src, dst)
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
