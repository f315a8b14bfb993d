"""Files and URLs gradtrace must refuse, with a message naming the problem, and
leave exactly as they were (compared by hash, side files included)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from gradtrace.tracer.storage.db import QUICK_CHECK_MAX_BYTES
from helpers.trace import train

from gradtrace import tracer


def _state(path: Path) -> tuple[str, list[str]]:
    """The file's hash and the names of every file beside it."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(os.listdir(path.parent))


def _refused(path: Path, error: type[Exception], match: str) -> None:
    """Recording into, opening and read-only opening ``path`` all fail and change nothing.

    A SQLite reader of a WAL file may leave an empty ``-wal``/``-shm`` beside it (it
    cannot remove them), so after the read-only attempt only the file itself is compared.
    """
    before = _state(path)
    attempts = [
        (False, lambda: tracer.record("x", db=path)),
        (False, lambda: tracer.connect(path)),
        (True, lambda: tracer.connect(path, readonly=True)),
    ]
    for readonly, attempt in attempts:
        with pytest.raises(error, match=match) as info:
            attempt()
        assert str(path) in str(info.value)
        assert "left untouched" in str(info.value)
        if readonly:
            assert _state(path)[0] == before[0]
        else:
            assert _state(path) == before


def test_a_file_that_is_not_sqlite(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"my thesis, chapter 3\n" * 500)
    _refused(path, tracer.NotAGradtraceDatabase, "is not a SQLite database")


def test_sqlite_database_with_foreign_tables(tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:  # rollback-journal mode, as most SQLite files are
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        conn.execute("INSERT INTO orders (item) VALUES ('tea')")
    conn.close()
    _refused(path, tracer.NotAGradtraceDatabase, "holds other tables \\(orders\\)")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_runs_table_without_a_schema_version(tmp_path):
    path = tmp_path / "lookalike.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (x)")
    conn.close()
    _refused(path, tracer.NotAGradtraceDatabase, "no schema version")


def _truncate(to):
    def damage(path: Path) -> None:
        with path.open("r+b") as f:
            f.truncate(to(path.stat().st_size))

    return damage


def _overwrite(at, size=4096):
    def damage(path: Path) -> None:
        with path.open("r+b") as f:
            f.seek(at(path.stat().st_size))
            f.write(bytes((i * 37 + 11) % 256 for i in range(size)))

    return damage


DAMAGES = {
    "half": (_truncate(lambda n: n // 2 // 4096 * 4096), "malformed|damaged"),
    "last-page": (_truncate(lambda n: n - 4096), "malformed|damaged"),
    "mid-page": (_truncate(lambda n: n - 100), "not a whole number of .*pages"),
    "header-only": (_truncate(lambda n: 100), "not a whole number of .*pages"),
    "short-header": (_truncate(lambda n: 40), "shorter than a SQLite header"),
    "schema-page": (_overwrite(lambda n: 100, 3000), "damaged|not a readable"),
    "page-2": (_overwrite(lambda n: 4096), "damaged|not a readable"),
    "middle": (_overwrite(lambda n: n // 2 // 4096 * 4096), "damaged|not a readable"),
    "last": (_overwrite(lambda n: n - 4096), "damaged|not a readable"),
    "page-size": (_overwrite(lambda n: 16, 2), "impossible page size"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_gradtrace_database(recorded_db, tmp_path, damage):
    path = tmp_path / "runs.db"
    shutil.copy(recorded_db, path)
    assert path.stat().st_size <= QUICK_CHECK_MAX_BYTES
    fn, match = DAMAGES[damage]
    fn(path)
    _refused(path, tracer.NotAGradtraceDatabase, match)


def test_undamaged_copy_opens(recorded_db, tmp_path):
    path = tmp_path / "runs.db"
    shutil.copy(recorded_db, path)
    with tracer.connect(path, readonly=True) as store:
        assert sorted(store.runs()["name"]) == ["a", "b"]
        assert store.run("a").info["steps"] == 15


def test_urls_and_paths_that_cannot_be_used(tmp_path):
    missing = tmp_path / "no-such-folder" / "runs.db"
    with pytest.raises(tracer.DatabaseURLError, match=r"folder .*no-such-folder does not exist"):
        tracer.record("x", db=missing)
    assert not missing.parent.exists()
    with pytest.raises(tracer.DatabaseURLError, match="is a folder"):
        tracer.record("x", db=tmp_path)
    with pytest.raises(tracer.DatabaseURLError, match="SQLite or PostgreSQL, not 'mysql'"):
        tracer.record("x", db="mysql://user:secret@localhost/runs")
    with pytest.raises(tracer.DatabaseURLError, match="empty"):
        tracer.record("x", db="  ")
    with pytest.raises(tracer.DatabaseURLError, match="cannot parse"):
        tracer.connect("postgresql+psycopg://user@host:notaport/db")
    with pytest.raises(tracer.DatabaseURLError, match="cannot connect"):
        tracer.record("x", db="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    absent = tmp_path / "absent.db"
    with pytest.raises(tracer.NotAGradtraceDatabase, match=r"no database at .*absent\.db"):
        tracer.connect(absent, readonly=True)
    assert not absent.exists()
    assert os.listdir(tmp_path) == []


def test_password_is_not_shown_in_errors():
    with pytest.raises(tracer.DatabaseURLError) as info:
        tracer.record("x", db="mysql://user:hunter2@localhost/runs")
    assert "hunter2" not in str(info.value)


def test_readonly_open_of_a_path_with_uri_characters(tmp_path):
    """'?', '#' and '%' in a folder name must not cut the path short (SQLite URI)."""
    folder = tmp_path / "exp #1?lr=0.1 100%"
    folder.mkdir()
    path = folder / "runs.db"
    with tracer.record("odd-path", db=path) as run:
        list(train(2, run))
    before = _state(path)
    with tracer.connect(path, readonly=True) as store:
        assert store.runs()["name"].tolist() == ["odd-path"]
    assert _state(path)[0] == before[0]
    assert sorted(os.listdir(tmp_path)) == [folder.name]  # no stray "exp " file
