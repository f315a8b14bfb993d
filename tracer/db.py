"""Opening a gradtrace database: URL resolution, connection settings, migrations.

    >>> engine = open_database("runs.db")                 # doctest: +SKIP
    >>> engine = open_database("postgresql+psycopg://localhost/runs")  # doctest: +SKIP

``db`` is a path or any SQLAlchemy URL; without one, ``$GRADTRACE_DB`` or
``./gradtrace.db``. Opening for writing applies pending migrations once, under
a lock, so two processes opening a new file together do not both create it.
A read-only open never writes: it refuses a database that needs migrating.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from tracer.errors import (
    DatabaseURLError,
    NotAGradtraceDatabase,
    SchemaOutdated,
    SchemaTooNew,
)

DEFAULT_DB = "gradtrace.db"
BUSY_TIMEOUT_MS = 60_000
_MIGRATION_LOCK = 0x67726164  # pg_advisory lock id: "grad"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def resolve_url(db: str | os.PathLike | None = None) -> URL:
    """The SQLAlchemy URL for ``db``: a URL, a file path, or the default."""
    if db is None:
        db = os.environ.get("GRADTRACE_DB") or DEFAULT_DB
    text = os.fspath(db)
    if "://" not in text:
        if not text.strip():
            raise DatabaseURLError("the database path is empty; pass a file name such as runs.db")
        return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = make_url(text)
    except ArgumentError as e:
        raise DatabaseURLError(
            f"cannot parse database URL {text!r}; use a path like runs.db or a URL like "
            "sqlite:///runs.db or postgresql+psycopg://user@host/dbname"
        ) from e
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseURLError(
            f"gradtrace stores runs in SQLite or PostgreSQL, not {url.get_backend_name()!r} "
            f"({url.render_as_string(hide_password=True)})"
        )
    return url


def describe(url: URL) -> str:
    """A short name for messages: the file path, or the URL without password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def _sqlite_path(url: URL) -> Path | None:
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _check_sqlite_file(path: Path, readonly: bool) -> None:
    if not path.exists():
        if readonly:
            raise NotAGradtraceDatabase(
                f"no database at {path}; record a run first (gradtrace demo --db {path})"
            )
        if not path.parent.is_dir():
            raise DatabaseURLError(
                f"cannot create {path}: folder {path.parent} does not exist; create it first"
            )
        return
    if path.is_dir():
        raise DatabaseURLError(f"{path} is a folder; pass a database file inside it")
    with path.open("rb") as f:
        head = f.read(16)
    if head and head != _SQLITE_MAGIC:
        raise NotAGradtraceDatabase(
            f"{path} is not a SQLite database (it starts with {head[:8]!r}); "
            "it was left untouched; pass another file name with --db"
        )


def _sqlite_on_connect(readonly: bool):
    def on_connect(dbapi_conn, _record) -> None:
        # Take over transaction control from the sqlite3 module, so BEGIN is
        # ours: IMMEDIATE for writers (no deadlocked lock upgrades between two
        # recording processes), plain for readers.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            cur.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints, fast commits
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA cache_size = -65536")  # 64 MiB
        cur.close()

    return on_connect


def create_db_engine(url: URL, readonly: bool = False) -> Engine:
    """A SQLAlchemy engine with gradtrace's connection settings, no checks, no migration."""
    backend = url.get_backend_name()
    kwargs: dict = {}
    if backend == "sqlite":
        path = _sqlite_path(url)
        if readonly and path is not None:
            # SQLite's own read-only mode: the dashboard cannot write, whatever it runs.
            url = url.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
        kwargs["connect_args"] = {"check_same_thread": False}
    elif readonly:
        options = f"{url.query.get('options', '')} -c default_transaction_read_only=on"
        url = url.difference_update_query(["options"])
        kwargs["connect_args"] = {"options": options.strip()}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as e:
        raise DatabaseURLError(
            f"no driver for {url.drivername}: {e}; for PostgreSQL install "
            "gradtrace[postgres] and use postgresql+psycopg://"
        ) from e
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect(readonly))
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE): a deferred
    # transaction that reads and then writes can fail at once with "database
    # is locked" when another process writes, instead of waiting its turn.
    immediate = conn.get_execution_options().get("gradtrace_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writing(engine: Engine) -> Engine:
    """The same engine, for transactions that write (SQLite: BEGIN IMMEDIATE)."""
    return engine.execution_options(gradtrace_write=True)


def alembic_config() -> Config:
    """Alembic's configuration for the migrations shipped with gradtrace."""
    folder = Path(__file__).resolve().parent.parent / "migrations"
    cfg = Config(str(folder / "alembic.ini"))
    cfg.set_main_option("script_location", str(folder))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _state(conn: sa.Connection, url: URL) -> str | None:
    """The database's schema revision; None for an empty database. Refuses foreign ones."""
    tables = set(sa.inspect(conn).get_table_names())
    if not tables:
        return None
    revision = None
    if "alembic_version" in tables:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    if "runs" not in tables or ("alembic_version" in tables and revision is None):
        raise NotAGradtraceDatabase(
            f"{describe(url)} holds other tables ({', '.join(sorted(tables)[:5])}) and no "
            "gradtrace runs; it was left untouched; pass a new file name or an empty database"
        )
    if revision is None:
        raise NotAGradtraceDatabase(
            f"{describe(url)} has a runs table but no schema version; it was not made by "
            "gradtrace and was left untouched"
        )
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(revision)
    except Exception:
        raise SchemaTooNew(
            f"{describe(url)} was written by a newer gradtrace (schema revision {revision}); "
            "it was left untouched; upgrade: pip install -U gradtrace"
        ) from None
    return revision


def _translate(e: DBAPIError, url: URL) -> Exception:
    text = str(e.orig) if e.orig is not None else str(e)
    if isinstance(e.orig, sqlite3.DatabaseError) and (
        "not a database" in text or "malformed" in text or "encrypted" in text
    ):
        return NotAGradtraceDatabase(
            f"{describe(url)} is not a readable SQLite database ({text}); it was left "
            "untouched; restore it from a copy or pass another file name"
        )
    if isinstance(e, OperationalError) and url.get_backend_name() == "postgresql":
        return DatabaseURLError(
            f"cannot connect to {describe(url)}: {text.strip().splitlines()[0]}; "
            "check the host, port, user and database name"
        )
    return e


def migrate(engine: Engine, url: URL) -> str:
    """Bring the schema to the newest revision, once, under a lock. Returns the revision."""
    from alembic import command

    head = head_revision()
    with writing(engine).begin() as conn:  # SQLite: BEGIN IMMEDIATE is the lock
        if engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        current = _state(conn, url)
        if current != head:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return head


def open_database(db: str | os.PathLike | None = None, readonly: bool = False) -> Engine:
    """An engine for ``db`` with the schema at the newest revision (see module docstring)."""
    url = resolve_url(db)
    path = _sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    if path is not None:
        _check_sqlite_file(path, readonly)
    engine = create_db_engine(url, readonly)
    try:
        if readonly:
            with engine.connect() as conn:
                current = _state(conn, url)
            if current != head_revision():
                raise SchemaOutdated(
                    f"{describe(url)} uses an older schema ({current or 'empty'}); upgrade it "
                    f"once with: gradtrace db upgrade --db {describe(url)}"
                )
        else:
            migrate(engine, url)
    except DBAPIError as e:
        engine.dispose()
        raise _translate(e, url) from e
    except Exception:
        engine.dispose()
        raise
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
