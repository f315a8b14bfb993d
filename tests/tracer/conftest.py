"""Fixtures shared by the tracer's tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from gradtrace.tracer.recording import foreignguide
from helpers.ci import IN_CI
from helpers.trace import train

from gradtrace import tracer


@pytest.fixture(scope="session")
def recorded_db(tmp_path_factory) -> Path:
    """A small gradtrace database (runs ``a`` and ``b``), checkpointed into one file
    and closed cleanly. Tests copy it before changing it."""
    path = tmp_path_factory.mktemp("recorded") / "runs.db"
    for name in ("a", "b"):
        with tracer.record(name, db=path) as run:
            list(train(15, run))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture
def compiled_walk():
    """The compiled guided walk (``_guidedwalk``); skipped where it was not built, a
    failure in CI, whose install builds it."""
    if foreignguide._guidedwalk is None:
        message = "the guided walk is not compiled: pip install -e . with a C compiler"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    return foreignguide._guidedwalk
