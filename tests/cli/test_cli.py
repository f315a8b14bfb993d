"""The ``gradtrace`` command line, through click's CliRunner and as a real process.

Exit status 0 on success, 1 with one ``gradtrace: error: ...`` line (no traceback)
for what the user can fix, 2 for usage errors.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from gradtrace.tracer.recording.demo import train

from gradtrace import cli as cli_module
from gradtrace import tracer
from gradtrace.cli.main import cli

pytestmark = pytest.mark.filterwarnings("ignore:gradtrace. a value or gradient:RuntimeWarning")

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def run_cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result


def assert_one_line_error(result, code: int = 1, text: str = "") -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gradtrace: error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def toy_db(db_url) -> tuple[str, str]:
    """A database with one 3-step toy run; (url, run id)."""
    return db_url, train("toy", 3, db_url, name="toy")


# -- demo ----------------------------------------------------------------------------


def test_demo_records_a_run_and_prints_its_id(db_url):
    result = run_cli("demo", "toy", "--steps", "4", "--db", db_url, "--seed", "3", "--progress")
    assert result.exit_code == 0, result.stderr
    run_id = result.stdout.strip()
    assert HEX32.match(run_id)
    assert "loss=" in result.stderr and "4/4" in result.stderr  # the live bar
    assert "recorded 'toy': 4 steps, final loss" in result.stderr
    with tracer.connect(db_url, readonly=True) as store:
        view = store.run(run_id)
        assert view.status == "finished" and view.info["steps"] == 4
        assert view.info["seed"] == 3 and view.config["steps"] == 4
        loss = view.metrics()["loss"].iloc[-1]
    assert f"final loss {loss:.6g}" in result.stderr


def test_demo_moons_without_a_terminal_has_no_bar(tmp_path):
    db = tmp_path / "m.db"
    result = run_cli(
        "demo", "--steps", "2", "--name", "mini", "--capture", "params", "--db", str(db)
    )
    assert result.exit_code == 0, result.stderr
    assert "step/s" not in result.stderr  # stderr is not a terminal
    with tracer.connect(db, readonly=True) as store:
        view = store.run("mini")
        assert view.info["capture"] == "params" and len(view.parameters()) == 337


def test_demo_usage_errors():
    assert run_cli("demo", "cifar").exit_code == 2
    assert run_cli("demo", "--steps", "0").exit_code == 2
    assert run_cli("demo", "--port", "70000").exit_code == 2


def test_demo_serve_calls_the_dashboard(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("gradtrace.dashboard")
    fake.serve = lambda **kw: calls.append(kw)
    monkeypatch.setitem(sys.modules, "gradtrace.dashboard", fake)
    db = str(tmp_path / "s.db")
    result = run_cli("demo", "toy", "--steps", "1", "--db", db, "--serve", "--port", "8123")
    assert result.exit_code == 0, result.stderr
    assert calls == [
        {"db": db, "host": "127.0.0.1", "port": 8123, "open_run": result.stdout.strip()}
    ]
    result = run_cli("dashboard", "--db", db, "--host", "0.0.0.0")
    assert result.exit_code == 0
    assert calls[-1] == {"db": db, "host": "0.0.0.0", "port": 8050, "debug": False}


def test_without_the_dashboard_serve_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradtrace.dashboard", None)  # import dashboard -> ImportError
    db = tmp_path / "n.db"
    result = run_cli("demo", "toy", "--db", str(db), "--serve")
    assert_one_line_error(result, 1, "the dashboard is not available")
    assert not db.exists()  # nothing was trained
    assert_one_line_error(run_cli("dashboard", "--db", str(db)), 1, "dashboard is not available")


def test_interrupted_demo_exits_130(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("gradtrace.tracer.recording.demo.train", interrupted)
    result = run_cli("demo", "toy", "--db", str(tmp_path / "i.db"))
    assert result.exit_code == 130 and "gradtrace: interrupted" in result.stderr


# -- runs, show --------------------------------------------------------------------------


def test_runs_lists_runs(toy_db):
    url, run_id = toy_db
    train("toy", 2, url, name="a" * 60)
    result = run_cli("runs", "--db", url)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "EXPERIMENT",
        "STATUS",
        "STARTED",
        "DURATION",
        "STEPS",
        "DIVERGED",
        "LOSS",
        "ACC",
    ]
    assert len(lines) == 3
    toy = next(line for line in lines if line.startswith(run_id[:8]))
    assert " toy " in toy and " demo " in toy and " finished " in toy
    with tracer.connect(url, readonly=True) as store:
        loss = store.run(run_id).metrics()["loss"].iloc[-1]
    assert toy.split()[-4:-1] == ["3", "-", f"{loss:.4g}"]
    assert "a" * 31 + "…" in result.stdout  # long names are cut

    result = run_cli("runs", "--db", url, "--experiment", "nothing")
    assert result.exit_code == 0 and "no runs of experiment 'nothing'" in result.stdout


def test_runs_reads_gradtrace_db_from_the_environment(toy_db):
    url, run_id = toy_db
    result = run_cli("runs", env={"GRADTRACE_DB": url})
    assert result.exit_code == 0 and run_id[:8] in result.stdout


def test_show(toy_db):
    url, run_id = toy_db
    result = run_cli("show", run_id[:6], "--db", url)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    with tracer.connect(url, readonly=True) as store:
        view = store.run(run_id)
        grads = view.gradients(steps=2).iloc[0]
    for expected in (
        f"run         {run_id}",
        "status      finished",
        "steps       3 (last step 2)",
        "seed        1337",
        'model       MLP nin=3 nouts=[4, 4, 1] activation="tanh" seed=1337',
        "config      data = lecture 4 samples",
        "final       acc ",
        "largest |grad| at step 2 (10 of 41 parameters):",
        "first non-finite: none",
    ):
        assert expected in out, expected
    top = grads.abs().sort_values(ascending=False).index[:10].tolist()
    table = out.split("largest |grad|")[1].splitlines()[2:12]
    assert [line.split()[1] for line in table] == top


def test_show_points_at_the_first_nan(db_url):
    from helpers.bits import record_bits_run

    record_bits_run(db_url, name="bits")
    result = run_cli("show", "bits", "--db", db_url)
    assert result.exit_code == 0, result.stderr
    with tracer.connect(db_url, readonly=True) as store:
        bad = store.run("bits").first_nonfinite()
    line = result.stdout.strip().splitlines()[-1]
    assert line == f"first non-finite: {bad.story}"
    assert bad.kind == "backward" and f"step {bad.step}: " in line


def test_runs_names_the_step_a_run_diverged_at(db_url):
    from helpers.bits import record_bits_run

    record_bits_run(db_url, name="bits")
    result = run_cli("runs", "--db", db_url)
    assert result.exit_code == 0, result.stderr
    with tracer.connect(db_url, readonly=True) as store:
        step = store.run("bits").first_nonfinite().step
    header, row = result.stdout.splitlines()
    column = header.index("DIVERGED")
    assert row[column:].split()[:2] == ["step", str(step)]


def test_run_errors_are_one_line(toy_db):
    url, _ = toy_db
    train("toy", 1, url, name="toy-b")
    assert_one_line_error(run_cli("show", "nope", "--db", url), 1, "no run matches 'nope'")
    assert_one_line_error(run_cli("show", "to", "--db", url), 1, "'to' matches 2 runs by name")
    assert_one_line_error(run_cli("export", "nope", "--db", url), 1, "no run matches")


def test_a_shared_name_shows_the_newest_run_with_a_note(toy_db):
    url, older = toy_db
    newer = train("toy", 1, url, name="toy")
    result = run_cli("show", "toy", "--db", url)
    assert result.exit_code == 0, result.stderr
    assert newer in result.stdout and older not in result.stdout
    note = result.stderr.strip().splitlines()
    assert note == [
        f"gradtrace: note: 'toy' names 2 runs; this is the most recent ({newer[:8]}, "
        + note[0].split(", ", 1)[1]
    ]
    assert "pass an id for an older one" in note[0]
    assert older in run_cli("show", older[:8], "--db", url).stdout


def test_database_errors_are_one_line(tmp_path):
    missing = tmp_path / "missing.db"
    assert_one_line_error(run_cli("runs", "--db", str(missing)), 1, "no database at")
    assert not missing.exists()  # reading never creates a database
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 10)
    assert_one_line_error(run_cli("runs", "--db", str(text)), 1, "is not a SQLite database")
    assert_one_line_error(run_cli("show", "x", "--db", "mysql://u@h/db"), 1, "SQLite or PostgreSQL")
    assert_one_line_error(
        run_cli("runs", "--db", "postgresql+psycopg://u@127.0.0.1:1/x"), 1, "cannot connect"
    )
    assert_one_line_error(run_cli("runs", "--db", "sqlite:////no/such/folder/x.db"), 1)


def test_usage_errors_exit_2():
    for args in (
        ["show"],
        ["export", "x", "--format", "xml"],
        ["nope"],
        ["runs", "--bogus"],
        ["db", "downgrade"],
    ):
        result = run_cli(*args)
        assert result.exit_code == 2, args
        assert "Usage:" in result.stderr


# -- export -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(toy_db, tmp_path, fmt):
    url, run_id = toy_db
    out = tmp_path / "out"
    result = run_cli("export", run_id[:8], "--db", url, "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    names = {Path(line.split()[0]).name for line in result.stdout.splitlines()}
    assert names == {"run.json"} | {
        f"{t}.{fmt}" for t in ("metrics", "parameters", "steps", "updates", "graphs", "nodes")
    }
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    with tracer.connect(url, readonly=True) as store:
        view = store.run(run_id)
        updates = read(out / f"updates.{fmt}")
        assert len(updates) == 3 * 41
        assert (updates["grad"].to_numpy() == view.updates()["grad"].to_numpy()).all()
        assert len(read(out / f"nodes.{fmt}")) == 3 * view.nodes_per_step()


def test_export_default_folder(toy_db, tmp_path, monkeypatch):
    url, run_id = toy_db
    monkeypatch.chdir(tmp_path)
    result = run_cli("export", "toy", "--db", url, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / f"toy-{run_id[:8]}" / "metrics.csv").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(run_cli("export", "toy", "--db", url, "--out", str(blocker / "x")), 1)


# -- db -----------------------------------------------------------------------------------------


def test_db_upgrade_and_check(db_url):
    if db_url.startswith("sqlite"):
        Path(sa.make_url(db_url).database).touch()  # an empty file is an empty database
    result = run_cli("db", "check", "--db", db_url)
    assert_one_line_error(result, 1, "has no schema yet")
    assert "current   (none)" in result.stdout

    result = run_cli("db", "upgrade", "--db", db_url)
    assert result.exit_code == 0, result.stderr
    assert re.search(r"upgraded from \(empty\) to revision \w+ \(head\)", result.stdout)
    result = run_cli("db", "upgrade", "--db", db_url)
    assert result.exit_code == 0 and "nothing to upgrade" in result.stdout

    result = run_cli("db", "check", "--db", db_url)
    assert result.exit_code == 0, result.stderr
    assert "models    match the schema (alembic check)" in result.stdout
    current = re.search(r"current   (\S+)", result.stdout)[1]
    assert f"head      {current}" in result.stdout


def test_db_check_sees_a_database_behind_head(toy_db, monkeypatch):
    url, _ = toy_db
    monkeypatch.setattr("gradtrace.tracer.admin.head_revision", lambda: "9999_future")
    result = run_cli("db", "check", "--db", url)
    assert_one_line_error(result, 1, "is behind")
    assert "head      9999_future" in result.stdout


def test_db_check_sees_a_newer_database(toy_db):
    url, _ = toy_db
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff_from_future'"))
    engine.dispose()
    assert_one_line_error(run_cli("db", "check", "--db", url), 1, "newer than this gradtrace")
    assert_one_line_error(run_cli("runs", "--db", url), 1, "newer gradtrace")


def test_db_check_sees_drift(toy_db):
    url, _ = toy_db
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN smuggled INTEGER"))
    engine.dispose()
    result = run_cli("db", "check", "--db", url)
    line = assert_one_line_error(result, 1, "differs from the models")
    assert "smuggled" in line
    assert "models    DIFFER" in result.stdout


def test_db_check_reads_every_page(tmp_path):
    """A damaged page the cheap open checks never reach fails ``db check``, by name.
    SQLite only: PostgreSQL pages are the server's to check."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    train("toy", 3, url, name="toy")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'updates'").fetchone()
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with path.open("r+b") as f:
        f.seek((root[0] - 1) * page)
        f.write(b"\xa5" * page)
    result = run_cli("db", "check", "--db", url)
    line = assert_one_line_error(result, 1, "is not a readable SQLite database")
    assert str(path) in line


def test_db_check_of_a_missing_file(tmp_path):
    missing = tmp_path / "none.db"
    assert_one_line_error(run_cli("db", "check", "--db", str(missing)), 1, "no database at")
    assert not missing.exists()


# -- as a real process ----------------------------------------------------------------------------


def _command() -> list[str]:
    script = shutil.which("gradtrace")
    return [script] if script else [sys.executable, "-m", "gradtrace"]


def test_real_processes(tmp_path):
    db = str(tmp_path / "p.db")
    env = {**os.environ, "GRADTRACE_DB": db}
    env.pop("GRADTRACE_DEBUG", None)

    def run(*args: str, cmd: list[str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*(cmd or _command()), *args], capture_output=True, text=True, env=env, timeout=120
        )

    done = run("demo", "toy", "--steps", "2")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert HEX32.match(run_id)

    done = run("runs", cmd=[sys.executable, "-m", "gradtrace"])
    assert done.returncode == 0 and run_id[:8] in done.stdout

    done = run("show", "nope")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"gradtrace: error: no run matches 'nope' (by id, id prefix, name or name prefix) in "
        f"{db}; `gradtrace runs` lists them"
    ]
    assert done.stdout == ""

    done = run("show")
    assert done.returncode == 2 and "Missing argument 'RUN'" in done.stderr

    done = run("--version")
    assert done.returncode == 0 and "gradtrace" in done.stdout

    env["GRADTRACE_DEBUG"] = "1"  # the traceback, for bug reports
    done = run("show", "nope")
    assert done.returncode == 1 and "Traceback" in done.stderr and "RunNotFound" in done.stderr


def test_main_entry_point(toy_db, capsys):
    url, run_id = toy_db
    with pytest.raises(SystemExit) as exit_:
        cli_module.main(["runs", "--db", url])
    assert exit_.value.code == 0
    assert run_id[:8] in capsys.readouterr().out
