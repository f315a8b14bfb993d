"""Opening costs the same whatever the file's size: cheap checks on open, the full
check after a writer died, and a damaged page met later named with its file."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from gradtrace.tracer.storage import db as dbmod
from helpers.trace import train

from gradtrace import tracer


def _copy(recorded_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    shutil.copy(recorded_db, path)
    return path


def _damage_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage."""
    with sqlite3.connect(path) as conn:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with path.open("r+b") as f:
        f.seek((root[0] - 1) * page_size)
        f.write(bytes((i * 37 + 11) % 256 for i in range(page_size)))


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def _add_dead_writer(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO writers (host, pid, pid_started, opened_at) VALUES (?, ?, NULL, ?)",
            (socket.gethostname(), _dead_pid(), "2026-01-01 00:00:00"),
        )
    conn.close()


def _writers(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        n = conn.execute("SELECT count(*) FROM writers").fetchone()[0]
    conn.close()
    return n


def test_head_constant_is_alembic_head():
    assert dbmod.head_revision() == dbmod.HEAD_REVISION


def test_open_at_head_loads_no_migration_scripts(recorded_db, tmp_path, monkeypatch):
    path = _copy(recorded_db, tmp_path)

    def refuse(*_a, **_k):
        raise AssertionError("migration scripts loaded although nothing is pending")

    monkeypatch.setattr(ScriptDirectory, "from_config", refuse)
    with tracer.connect(path, readonly=True) as store:
        assert store.runs()["name"].tolist() == ["b", "a"]  # newest first
    with tracer.record("b", db=path) as run:
        list(train(1, run))


def test_a_clean_close_leaves_no_mark(recorded_db):
    assert _writers(recorded_db) == 0


@pytest.mark.parametrize("background", [False, True])
def test_damage_met_later_is_named(recorded_db, tmp_path, monkeypatch, background):
    """A big file (no full check on open) with a damaged metrics table: the run
    starts, and the first write says which file is damaged (the writer thread's
    error reaches the caller at the latest at close())."""
    monkeypatch.setattr(dbmod, "QUICK_CHECK_MAX_BYTES", 0)
    path = _copy(recorded_db, tmp_path)
    _damage_table(path, "metrics")
    run = tracer.record("late", db=path, background=background)
    error = tracer.NotAGradtraceDatabase if not background else tracer.RecorderError
    with pytest.raises(error, match="is damaged") as info:
        try:
            list(train(1, run))
        finally:
            run.close("failed", "damaged")
    assert str(path) in str(info.value) and "gradtrace db check" in str(info.value)
    # The recorder that met the damage left its mark: the next open checks every
    # page and refuses the file.
    assert _writers(path) == 1
    with pytest.raises(tracer.NotAGradtraceDatabase, match=r"malformed|damaged") as info:
        tracer.connect(path, readonly=True)
    assert str(path) in str(info.value)


def test_dead_writer_means_a_full_check(recorded_db, tmp_path, monkeypatch):
    monkeypatch.setattr(dbmod, "QUICK_CHECK_MAX_BYTES", 0)
    path = _copy(recorded_db, tmp_path)
    _damage_table(path, "updates")
    tracer.connect(path, readonly=True).close()  # closed cleanly: cheap checks only
    _add_dead_writer(path)
    with pytest.raises(tracer.NotAGradtraceDatabase, match=r"(malformed|damaged).*left untouched"):
        tracer.connect(path, readonly=True)


def test_full_check_passed_forgets_dead_writers(recorded_db, tmp_path, monkeypatch):
    monkeypatch.setattr(dbmod, "QUICK_CHECK_MAX_BYTES", 0)
    path = _copy(recorded_db, tmp_path)
    _add_dead_writer(path)
    checks = []
    real = dbmod._quick_check
    monkeypatch.setattr(dbmod, "_quick_check", lambda c, u: (checks.append(u), real(c, u)))
    tracer.connect(path, readonly=True).close()
    assert len(checks) == 1 and _writers(path) == 1  # a reader cannot clear it
    tracer.connect(path).close()
    assert len(checks) == 2 and _writers(path) == 0
    tracer.connect(path).close()
    assert len(checks) == 2  # clean again: no full check
    assert os.path.getsize(path) > 0
