"""The checks made on a SQLite file before gradtrace opens it, reading it without
changing a byte of it or beside it, and the error for a damaged one.

    >>> check_file(Path("runs.db"))       # what `gradtrace db check` runs   # doctest: +SKIP

``check_sqlite_file`` is the cheap part every open runs (header, page size, file
size, foreign tables, side files); ``check_file`` adds SQLite's full
``PRAGMA quick_check`` on an immutable connection (see tracer/storage/integrity.py for
when an open runs it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from gradtrace.tracer.errors import DatabaseURLError, NotAGradtraceDatabase
from gradtrace.tracer.storage import sqlitefile
from gradtrace.tracer.storage.sqlitefile import (
    immutable_uri,
    in_use,
    look,
    side,
    unreadable,
    writable,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
QUICK_CHECK = "PRAGMA quick_check(5)"  # the first five problems are enough to name


def check_sqlite_file(path: Path, readonly: bool) -> int:
    """Refuse, before any connection touches it, a file gradtrace must not open:
    a folder, not SQLite, a damaged header, foreign tables, a read-only file to
    record into, a missing one to read, a hot journal on a read-only open.
    Returns the file's size (0: a new database)."""
    if not readonly and path.parent.is_dir() and not path.is_dir() and not writable(path):
        raise DatabaseURLError(
            f"cannot record into {path}: the file or its folder is read-only (a read-only "
            "filesystem or permissions); pass a file in a writable folder, or read it with "
            "gradtrace runs/show/dashboard"
        )
    if not path.exists():
        if readonly:
            raise NotAGradtraceDatabase(
                f"no database at {path}; record a run first (gradtrace demo --db {path})"
            )
        if not path.parent.is_dir():
            raise DatabaseURLError(
                f"cannot create {path}: folder {path.parent} does not exist; create it first"
            )
        return 0
    if path.is_dir():
        raise DatabaseURLError(f"{path} is a folder; pass a database file inside it")
    if in_use(path):
        # This process has it open, so it was checked at that open; reading the
        # header now would drop the live connections' locks (sqlitefile's docstring).
        return path.stat().st_size
    with sqlitefile.open_file(path) as f:
        head = f.read(100)
    if not head:
        return 0  # an empty file: a new database
    if head[:16] != SQLITE_MAGIC:
        raise NotAGradtraceDatabase(
            f"{path} is not a SQLite database (it starts with {head[:8]!r}); "
            "it was left untouched; pass another file name with --db"
        )
    problem = header_problem(path, head)
    if problem:
        raise NotAGradtraceDatabase(
            f"{path} is a damaged SQLite database ({problem}); it was left untouched; "
            "restore it from a copy or pass another file name"
        )
    # Before any ordinary connection, which could roll back, checkpoint or add
    # side files: another program's file must stay byte-identical.
    seen = look(path)
    refuse_foreign(str(path), seen.tables, seen.revision)
    if readonly and seen.hot_journal:
        raise NotAGradtraceDatabase(
            f"{path} has an unfinished transaction ({path.name}-journal) that only a "
            f"writable open can roll back; it was left untouched; run: "
            f"gradtrace db upgrade --db {path}"
        )
    return path.stat().st_size


def check_file(path: Path) -> None:
    """Refuse, naming it, a SQLite file gradtrace cannot read: not SQLite, damaged
    (header or any page: ``PRAGMA quick_check``), foreign, or an unfinished
    transaction. Reads it as immutable: no byte of it or beside it changes."""
    check_sqlite_file(path, readonly=True)
    # With a -wal beside it, the pages that count are partly in the -wal: read them
    # through SQLite's read-only mode, which sees it (and is SQLite's own handle).
    wal = side(path, "-wal").exists()
    uri = f"file:{quote(str(path))}?mode=ro" if wal else immutable_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            problems = [r[0] for r in conn.execute(QUICK_CHECK)]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise unreadable(path, e) from None
    refuse_damage(str(path), problems)


def refuse_foreign(name: str, tables: tuple[str, ...] | list[str], revision: str | None) -> None:
    """Refuse, naming it, a database whose tables are not gradtrace's: other tables
    and no ``runs``, or a ``runs`` table without a schema version. An empty one, or
    one downgraded to base (an empty ``alembic_version``), is a new database."""
    tables = sorted(tables)
    if not tables or (tables == ["alembic_version"] and revision is None):
        return
    if "runs" not in tables or ("alembic_version" in tables and revision is None):
        raise NotAGradtraceDatabase(
            f"{name} holds other tables ({', '.join(tables[:5])}) and no gradtrace runs; "
            "it was left untouched; pass a new file name or an empty database"
        )
    if revision is None:
        raise NotAGradtraceDatabase(
            f"{name} has a runs table but no schema version; it was not made by gradtrace "
            "and was left untouched"
        )


def refuse_damage(name: str, problems: list[str]) -> None:
    """The error for what ``PRAGMA quick_check`` found, naming the file, if anything."""
    if problems != ["ok"]:
        text = " ".join(problems).replace("*** in database main ***", "").split()
        raise NotAGradtraceDatabase(
            f"{name} is a damaged SQLite database ({' '.join(text)[:300]}); "
            "it was left untouched; restore it from a copy or pass another file name"
        )


def header_problem(path: Path, head: bytes) -> str | None:
    """What is visibly wrong with a SQLite file's header and size, if anything."""
    if len(head) < 100:
        return f"the file is {len(head)} bytes long, shorter than a SQLite header"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"the header gives an impossible page size {page_size}"
    size = path.stat().st_size
    if size % page_size:  # SQLite writes whole pages, so this is never a write in progress
        return f"its size {size} is not a whole number of {page_size}-byte pages: truncated"
    # A file shorter than its header's page count is left to SQLite, which checks
    # it under its locks: read here, it may be another process's commit under way.
    return None
