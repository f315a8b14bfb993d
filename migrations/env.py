"""Alembic environment for gradtrace.

gradtrace runs migrations itself (``tracer.db``) and hands over an open
connection in ``config.attributes["connection"]``, already inside the
transaction that holds the migration lock. From the command line, pass the
database with ``-x db=URL`` (or set GRADTRACE_DB).
"""

from __future__ import annotations

import os

from alembic import context
from gradtrace.tracer.storage.models import Base
from sqlalchemy import create_engine

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        transactional_ddl=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("GRADTRACE_DB")
    if not url:
        raise SystemExit("pass the database: alembic -x db=sqlite:///runs.db ...")
    from gradtrace.tracer.storage.db import resolve_url

    engine = create_engine(resolve_url(url))
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("gradtrace migrations run online only")
run_migrations_online()
