"""Opening a gradtrace database: URL resolution, connection settings, migrations.

    >>> engine = open_database("runs.db")                 # doctest: +SKIP
    >>> engine = open_database("postgresql+psycopg://localhost/runs")  # doctest: +SKIP

``db`` is a path or any SQLAlchemy URL; without one, ``$GRADTRACE_DB`` or
``./gradtrace.db``. Opening for writing applies pending migrations once, under
a lock, so two processes opening a new file together do not both create it,
then switches a SQLite file to WAL mode. A read-only open never writes: it
refuses a database that needs migrating. A file that is not SQLite, is damaged,
holds foreign tables or a newer schema is refused before anything touches it.
"""

from __future__ import annotations

import os
import sqlite3
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from gradtrace.tracer.errors import (
    DatabaseURLError,
    NotAGradtraceDatabase,
    SchemaOutdated,
    SchemaTooNew,
)
from gradtrace.tracer.storage.filecheck import (
    QUICK_CHECK,
    check_sqlite_file,
    refuse_damage,
    refuse_foreign,
)
from gradtrace.tracer.storage.integrity import DAMAGED, dead_writers, forget_writers, name_damage
from gradtrace.tracer.storage.sqlitefile import (
    retry_locked,
    side,
    track_connections,
    writable,
)
from gradtrace.tracer.validate import check
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

DEFAULT_DB = "gradtrace.db"
BUSY_TIMEOUT_MS = 60_000
_MIGRATION_LOCK = 0x67726164  # pg_advisory lock id: "grad"
# Existing SQLite files up to this size get ``PRAGMA quick_check`` on every open
# (it reads every page), so a small damaged file is refused before gradtrace
# writes into it at a cost bounded whatever the file's size. Larger files get it
# only after a writer died mid-run, or from `gradtrace db check`; otherwise a
# damaged page is reported, with the file's name, by the first read that meets it
# (tracer/storage/integrity.py).
QUICK_CHECK_MAX_BYTES = 4 << 20
# The newest schema revision, known without loading the migration scripts (which
# takes a quarter of a second): they are loaded only when a migration is pending.
# tests/test_migrations.py checks it equals alembic's head.
HEAD_REVISION = "0009"


def resolve_url(db: str | os.PathLike | None = None) -> URL:
    """The SQLAlchemy URL for ``db``: a URL, a file path, or the default."""
    if db is None:
        db = os.environ.get("GRADTRACE_DB") or DEFAULT_DB
    check("db", db)
    text = os.fspath(db)
    if "://" not in text:
        if not text.strip():
            raise DatabaseURLError("the database path is empty; pass a file name such as runs.db")
        return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as e:  # ValueError: a port that is not a number
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


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL; None for another backend, memory or a URI."""
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _quick_check(conn: sa.Connection, url: URL) -> None:
    """``check_file`` on the connection an open uses (its locks, its -wal)."""
    refuse_damage(describe(url), [r[0] for r in conn.exec_driver_sql(QUICK_CHECK).all()])


def _sqlite_on_connect(readonly: bool):
    def on_connect(dbapi_conn, _record) -> None:
        # Take over transaction control from the sqlite3 module, so BEGIN is
        # ours: IMMEDIATE for writers (no deadlocked lock upgrades between two
        # recording processes), plain for readers. Nothing here writes to the
        # file: WAL mode is switched on by open_database once the file is known
        # to be a gradtrace database (a foreign file must stay byte-identical).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            cur.execute("PRAGMA synchronous = NORMAL")  # in WAL: durable at checkpoints
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA cache_size = -65536")  # 64 MiB
        cur.close()

    return on_connect


def _enable_wal(engine: Engine) -> None:
    """Readers never block the writer, and commits are cheap. Persistent in the file."""
    with engine.connect() as conn:
        # On the driver connection: SQLite refuses the switch inside a transaction.
        driver = conn.connection.driver_connection
        mode = driver.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            switch = driver.execute
            mode = retry_locked(
                lambda: switch("PRAGMA journal_mode = WAL").fetchone()[0], BUSY_TIMEOUT_MS / 1000
            )
    if str(mode).lower() not in ("wal", "memory"):
        raise DatabaseURLError(f"cannot switch {describe(engine.url)} to WAL mode (got {mode})")


def create_db_engine(url: URL, readonly: bool = False) -> Engine:
    """A SQLAlchemy engine with gradtrace's connection settings, no checks, no migration."""
    backend = url.get_backend_name()
    kwargs: dict = {}
    if backend == "sqlite":
        path = sqlite_path(url)
        if readonly and path is not None:
            # SQLite's own read-only mode: the dashboard cannot write, whatever it runs.
            # The path is %-escaped: a '?' or '#' in a folder name would end it. Where
            # no side file can be made (a read-only filesystem: an archive, a
            # snapshot) and no writer is live, the file is read as immutable.
            mode = "mode=ro"
            if not writable(path) and not side(path, "-wal").exists():
                mode = "immutable=1"
            url = url.set(database=f"file:{quote(str(path))}?{mode}", query={"uri": "true"})
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
        if path is not None:
            track_connections(engine, path)
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
    # The scripts ship inside the package: found by name, wherever it is installed.
    folder = Path(str(resources.files("gradtrace.migrations")))
    cfg = Config(str(folder / "alembic.ini"))
    cfg.set_main_option("script_location", str(folder))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _state(conn: sa.Connection, url: URL) -> str | None:
    """The database's schema revision; None for an empty database. Refuses foreign ones."""
    tables = sa.inspect(conn).get_table_names()
    revision = None
    if "alembic_version" in tables:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    refuse_foreign(describe(url), tables, revision)
    if revision is None:
        return None  # empty, or downgraded to base: empty again
    if revision == HEAD_REVISION:
        return revision
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
    if isinstance(e.orig, sqlite3.OperationalError) and (
        "disk is full" in text or "readonly database" in text or "unable to open" in text
    ):
        return DatabaseURLError(
            f"cannot write to {describe(url)} ({text}); free some space or pass a file "
            "in a writable folder"
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
    sqlite = engine.dialect.name == "sqlite"
    with writing(engine).connect() as conn:
        if sqlite:
            # A batch migration re-creates a SQLite table by copy, drop and rename;
            # with foreign keys on, dropping ``runs`` would cascade into every row
            # of every run. The pragma only takes effect outside a transaction.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():  # SQLite: BEGIN IMMEDIATE is the lock
                if not sqlite:
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                current = _state(conn, url)
                if current != head:
                    cfg = alembic_config()
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                        raise NotAGradtraceDatabase(
                            f"migrating {describe(url)} would break its links between tables; "
                            "it was rolled back; run `gradtrace db check` on it"
                        )
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
    return head


def open_database(db: str | os.PathLike | None = None, readonly: bool = False) -> Engine:
    """An engine for ``db`` with the schema at the newest revision (see module docstring).

    One path, in this order; everything that can refuse a database happens before
    anything is written to it:

    1. the URL (:func:`resolve_url`);
    2. the file, before any connection: not SQLite, damaged header, foreign tables,
       read-only or missing (``filecheck.check_sqlite_file``, which reads it only
       while this process holds no connection to it);
    3. the engine (:func:`create_db_engine`);
    4. on its first connection: every page when the file is small, a writer died in
       it or this process met damage in it; the schema revision (foreign or newer
       schemas refused);
    5. a reader stops here; a writer migrates, forgets dead writers, switches to WAL;
    6. later damage is named (``integrity.name_damage``); a recorder then marks
       itself open (``integrity.mark_open``).
    """
    url = resolve_url(db)
    path = sqlite_path(url)
    size = check_sqlite_file(path, readonly) if path is not None else 0
    engine = create_db_engine(url, readonly)
    try:
        current, dead = _first_look(engine, url, size)
        if readonly and current != HEAD_REVISION:
            raise SchemaOutdated(
                f"{describe(url)} uses an older schema ({current or 'empty'}); upgrade it "
                f"once with: gradtrace db upgrade --db {describe(url)}"
            )
        if not readonly:
            if current != HEAD_REVISION:
                migrate(engine, url)
            if dead:
                with writing(engine).begin() as conn:
                    forget_writers(conn, dead)
            if engine.dialect.name == "sqlite":
                _enable_wal(engine)
    except DBAPIError as e:
        engine.dispose()
        raise _translate(e, url) from e
    except Exception:
        engine.dispose()
        raise
    if path is not None:
        name_damage(engine, describe(url))
    return engine


def _first_look(engine: Engine, url: URL, size: int) -> tuple[str | None, list[int]]:
    """(schema revision, dead writers' marks), checking every page when it is due."""
    with engine.connect() as conn:
        checked = 0 < size <= QUICK_CHECK_MAX_BYTES
        if checked:
            _quick_check(conn, url)
        current = _state(conn, url)
        dead: list[int] = []
        if size and current == HEAD_REVISION:
            # A writer died mid-run, or this process met damage: check every page.
            dead = dead_writers(conn)
            if (dead or describe(url) in DAMAGED) and not checked:
                _quick_check(conn, url)
    return current, dead


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
