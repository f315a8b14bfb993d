"""Shared fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL.

``db_url`` runs a test once per backend. PostgreSQL is used when
GRADTRACE_TEST_PG_URL is set (``.ci/run`` sets it and starts the server); each
test gets its own schema, dropped afterwards. In CI (CI=true) a missing
PostgreSQL URL is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from helpers.ci import IN_CI

PG_URL = os.environ.get("GRADTRACE_TEST_PG_URL", "")


def _pg_schema_url() -> Iterator[str]:
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but GRADTRACE_TEST_PG_URL is not set: PostgreSQL tests must run")
        pytest.skip("set GRADTRACE_TEST_PG_URL to run the PostgreSQL variant")
    schema = f"gt_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    """A database URL with nothing in it, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
    else:
        yield from _pg_schema_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh schema (PostgreSQL-only tests)."""
    yield from _pg_schema_url()


@pytest.fixture
def sqlite_path(tmp_path):
    """A path for a new SQLite database file."""
    return tmp_path / "runs.db"
