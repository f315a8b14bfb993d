"""Files gradtrace did not write, or that are damaged, stay byte-identical, side files
included, whatever opens them; every refusal names the file (issue 13, breaks 5, 16, 17)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from gradtrace.tracer.storage import sqlitefile
from helpers.trace import train

from gradtrace import tracer
from gradtrace.cli.main import cli

# Another program's SQLite file, left by a process that died mid-way: in WAL mode
# with its tables only in the -wal, or in rollback mode with a hot -journal.
FOREIGN = {
    "wal": """
import os, sqlite3
c = sqlite3.connect("app.db", isolation_level=None)
c.execute("PRAGMA journal_mode = WAL"); c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("CREATE TABLE notes (x)"); c.execute("INSERT INTO notes VALUES (1)")
os._exit(0)
""",
    "hot-journal": """
import os, sqlite3
c = sqlite3.connect("app.db", isolation_level=None)
c.execute("CREATE TABLE notes (x)"); c.execute("INSERT INTO notes VALUES (1)")
c.execute("PRAGMA cache_size = 1"); c.execute("BEGIN")
for _ in range(2000): c.execute("INSERT INTO notes VALUES (?)", ("x" * 200,))
os._exit(0)
""",
    # An MLflow-like layout: a runs table and alembic's, in WAL mode, tables only in
    # the -wal. Having a runs table does not make a file gradtrace's (issue 19, item 2).
    "mlflow-wal": """
import os, sqlite3
c = sqlite3.connect("app.db", isolation_level=None)
c.execute("PRAGMA journal_mode = WAL"); c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
c.execute("INSERT INTO alembic_version VALUES ('4465047574b1')")
c.execute("CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250))")
c.execute("INSERT INTO runs VALUES ('a1', 'mine')")
os._exit(0)
""",
    # The same with its tables checkpointed into the main file, and a live -shm.
    "mlflow-main": """
import os, sqlite3
c = sqlite3.connect("app.db", isolation_level=None)
c.execute("PRAGMA journal_mode = WAL")
c.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
c.execute("INSERT INTO alembic_version VALUES ('4465047574b1')")
c.execute("CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250))")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("INSERT INTO runs VALUES ('a1', 'mine')")
os._exit(0)
""",
    # gradtrace's table names and revision numbering, under another program's mark.
    "other-mark": """
import os, sqlite3
c = sqlite3.connect("app.db", isolation_level=None)
c.execute("PRAGMA journal_mode = WAL"); c.execute("PRAGMA application_id = 1234")
c.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
c.execute("INSERT INTO alembic_version VALUES ('0009')")
for t in ("runs", "parameters", "steps", "metrics"): c.execute(f"CREATE TABLE {t} (x)")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("INSERT INTO runs VALUES (1)")
os._exit(0)
""",
}


def folder_state(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` and its hash."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(params=sorted(FOREIGN))
def foreign(request, tmp_path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    subprocess.run([sys.executable, "-c", FOREIGN[request.param]], cwd=folder, check=True)
    sides = {p.name for p in folder.iterdir()} - {"app.db"}
    assert sides, "the fixture must leave a side file"
    return folder / "app.db"


def test_a_foreign_file_with_side_files_stays_byte_identical(foreign):
    before = folder_state(foreign.parent)
    attempts = [
        lambda: tracer.record("x", db=foreign),
        lambda: tracer.connect(foreign),
        lambda: tracer.connect(foreign, readonly=True),
    ]
    for attempt in attempts:
        with pytest.raises(tracer.NotAGradtraceDatabase, match="left untouched") as info:
            attempt()
        assert str(foreign) in str(info.value)
        assert folder_state(foreign.parent) == before
    for command in (["db", "upgrade"], ["db", "check"], ["runs"]):
        result = CliRunner().invoke(cli, [*command, "--db", str(foreign)])
        assert result.exit_code == 1, (command, result.output)
        assert str(foreign) in result.output, command
        assert "Traceback" not in result.output
        assert folder_state(foreign.parent) == before, command


@pytest.fixture
def damaged(tmp_path) -> Path:
    """A gradtrace database with one page in the middle overwritten (header intact)."""
    path = tmp_path / "runs.db"
    with tracer.record("a", db=path) as run:
        list(train(40, run))
    size, page = path.stat().st_size, 4096
    assert size > 8 * page and not (tmp_path / "runs.db-wal").exists()
    with path.open("r+b") as f:
        f.seek((size // page // 2) * page)
        f.write(b"\xa5" * page)
    return path


def hostile_files(tmp_path: Path, damaged: Path) -> dict[str, Path]:
    files = {"damaged": damaged}
    for name, data in {
        "text": b"my thesis, chapter 3\n" * 300,
        "png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,
        "short header": b"SQLite format 3\x00" + b"\x10\x00",
        "bad page size": b"SQLite format 3\x00" + b"\x00\x07" + bytes(82),
        "truncated": damaged.read_bytes()[:6000],
        "zeros": bytes(8192),
        "random": os.urandom(8192),
    }.items():
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        (folder / "x.db").write_bytes(data)
        files[name] = folder / "x.db"
    return files


def test_db_check_names_hostile_files_exits_1_and_creates_nothing(tmp_path, damaged):
    for what, path in hostile_files(tmp_path, damaged).items():
        before = folder_state(path.parent)
        result = CliRunner().invoke(cli, ["db", "check", "--db", str(path)])
        assert result.exit_code == 1, (what, result.output)
        assert str(path) in result.output, (what, result.output)
        assert "Traceback" not in result.output, what
        assert folder_state(path.parent) == before, what


def test_gradtrace_marks_its_files_and_reads_unmarked_old_ones(tmp_path):
    """The mark is what makes a file gradtrace's; 0.1.0's files carry none."""
    path = tmp_path / "new.db"
    tracer.record("a", db=path).close()
    assert sqlitefile.look(path).application_id == sqlitefile.APPLICATION_ID
    old = tmp_path / "old.db"
    shutil.copyfile(Path(__file__).parents[1] / "data" / "gradtrace-0.1.0.db", old)
    assert not sqlitefile.look(old).foreign
    with tracer.connect(old) as store:
        assert store.runs().shape[0] > 0
    assert sqlitefile.look(old).marked


def test_db_check_passes_a_healthy_database(tmp_path):
    path = tmp_path / "ok.db"
    tracer.record("a", db=path).close()
    result = CliRunner().invoke(cli, ["db", "check", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "models    match the schema" in result.output


def test_a_database_on_a_read_only_filesystem_can_be_read(tmp_path):
    """Runs, show and the store work on a read-only mount (an archive, a snapshot)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    src = tmp_path / "src"
    src.mkdir()
    with tracer.record("archived", db=src / "runs.db") as run:
        list(train(5, run))
    mnt = tmp_path / "ro"
    mnt.mkdir()
    script = f"""
set -e
mount --bind {src} {mnt}
mount -o remount,bind,ro {mnt}
touch {mnt}/probe 2>/dev/null && exit 77
{sys.executable} -m gradtrace runs --db {mnt}/runs.db
{sys.executable} -m gradtrace show archived --db {mnt}/runs.db
{sys.executable} -c "
from gradtrace import tracer
store = tracer.connect('{mnt}/runs.db', readonly=True)
print('steps', len(store.run('archived').steps()))
try:
    tracer.record('new', db='{mnt}/runs.db')
except tracer.GradtraceError as e:
    print('refused:', e)
"
"""
    command = ["unshare", "--mount", "sh", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 77 or "unshare failed" in done.stderr or "mount:" in done.stderr:
        pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "archived" in done.stdout and "finished" in done.stdout
    assert "steps 5" in done.stdout
    assert f"refused: cannot record into {mnt}/runs.db" in done.stdout
    assert sorted(os.listdir(src)) == ["runs.db"]


def test_a_full_disk_at_the_start_is_a_clear_error_naming_the_file(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    full = tmp_path / "full"
    full.mkdir()
    script = f"""
set -e
mount -t tmpfs -o size=256k tmpfs {full}
head -c 200000 /dev/zero > {full}/filler
{sys.executable} -c "
from gradtrace import tracer
try:
    tracer.record('x', db='{full}/runs.db')
except tracer.GradtraceError as e:
    print('refused:', e)
"
"""
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True
    )
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"refused: cannot write to {full}/runs.db (database or disk is full)" in done.stdout
