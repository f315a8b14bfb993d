"""Issue 13's breaks, one test each: the recorder and readers under hostile conditions."""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import nullcontext

import pytest
from gradtrace.engine import Value
from helpers.trace import refusing_step

from gradtrace import tracer


def test_one_refused_step_in_background_loses_that_step_alone(sqlite_path):
    refusing_step(sqlite_path, 5)
    x = Value(1.0)
    run = tracer.record("bg", db=sqlite_path, background=True, queue_size=64)
    run.watch([x])
    errors = []
    for k in range(40):
        try:
            run.log(x * 2, acc=float(k))
        except tracer.RecorderError as e:
            errors.append(str(e))
    reported = nullcontext() if errors else pytest.raises(tracer.RecorderError, match=r"\(s\) 5")
    with reported:
        run.close()
    with tracer.connect(sqlite_path) as store:
        view = store.run("bg")
        kept = view.steps().index.tolist()
        assert kept == [k for k in range(40) if k != 5]
        assert view.info["steps"] == 39 == len(kept)
        assert view.metrics()["acc"].tolist() == [float(k) for k in kept]
        assert view.status == "failed"
        assert "step(s) 5 could not be stored" in view.info["error"]
    assert all("step(s) 5" in e for e in errors)


def test_a_run_that_lost_steps_keeps_its_last_update_nonfinite_step(sqlite_path):
    refusing_step(sqlite_path, 1)
    x = Value(1.0)
    run = tracer.record("lost-then-inf", db=sqlite_path, background=True)
    run.watch([x])
    errors = []
    for _ in range(3):
        try:
            run.log(x * 2)
        except tracer.RecorderError as e:  # step 1's loss, reported by a later log()
            errors.append(str(e))
    x.data = math.inf  # the last update goes non-finite: only the Final record says so
    try:
        run.close()
    except tracer.RecorderError as e:
        errors.append(str(e))
    assert errors and all("step(s) 1" in e for e in errors)
    with tracer.connect(sqlite_path, readonly=True) as store:
        assert store.runs().set_index("name").loc["lost-then-inf", "diverged_at_step"] == 2
        view = store.run("lost-then-inf")
        assert view.status == "failed" and "step(s) 1" in view.info["error"]
        found = view.first_nonfinite()
        assert (found.step, found.kind, found.value) == (2, "update", math.inf)


# -- how a process ends: SIGTERM, sys.exit, fork ---------------------------------

CHILD = """\
import os, sys, time
from gradtrace import tracer
from gradtrace.engine import Value

mode, db, background = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
x = Value(1.0)


def loop(run):
    run.watch([x])
    for k in range(10**9):
        run.log(x * 2, acc=float(k))
        print(k, flush=True)  # log() returned: this step must be kept


if mode == "with":
    with tracer.record("term", db=db, background=background) as run:
        loop(run)
elif mode == "bare":
    loop(tracer.record("term", db=db, background=background))
elif mode == "exit0":
    with tracer.record("exit0", db=db):
        sys.exit(0)
elif mode == "exit1":
    run = tracer.record("exit1", db=db)
    sys.exit(1)
elif mode == "fork":
    run = tracer.record("parent", db=db)
    run.watch([x])
    run.log(x * 2)
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # a normal exit of the child runs the inherited atexit hooks
    os.waitpid(pid, 0)
    print(tracer.connect(db).run("parent").status, flush=True)
    run.log(x * 3)
"""


def _child(tmp_path, *args: str) -> subprocess.Popen:
    script = tmp_path / "ending.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )


@pytest.mark.parametrize("background", [False, True], ids=["sync", "background"])
@pytest.mark.parametrize("mode", ["with", "bare"])
def test_sigterm_ends_the_run_terminated_keeping_every_logged_step(
    db_url, tmp_path, mode, background
):
    db = db_url.removeprefix("sqlite:///")
    proc = _child(tmp_path, mode, db, "1" if background else "0")
    for line in proc.stdout:
        if int(line) == 30:
            break
    proc.send_signal(signal.SIGTERM)
    logged = [int(line) for line in proc.stdout]
    assert proc.wait(timeout=60) == -signal.SIGTERM  # then dies of the signal, as asked
    last_logged = logged[-1] if logged else 30
    with tracer.connect(db_url) as store:
        view = store.run("term")
        assert view.status == "terminated"
        kept = view.steps().index.tolist()
        assert kept == list(range(len(kept))) and len(kept) >= last_logged + 1
        assert view.info["steps"] == len(kept)
        assert view.metrics()["acc"].tolist() == [float(k) for k in kept]


def test_sys_exit_codes_decide_the_status(sqlite_path, tmp_path):
    for mode, code in (("exit0", 0), ("exit1", 1)):
        proc = _child(tmp_path, mode, str(sqlite_path), "0")
        assert proc.wait(timeout=60) == code
    with tracer.connect(sqlite_path) as store:
        assert store.run("exit0").status == "finished"
        exit1 = store.run("exit1")
        assert exit1.status == "failed"
        assert exit1.info["error"] == "SystemExit(1)"


def test_a_forked_child_never_touches_the_parents_run(sqlite_path, tmp_path):
    proc = _child(tmp_path, "fork", str(sqlite_path), "0")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.split() == ["running"]  # after the child exited
    with tracer.connect(sqlite_path) as store:
        view = store.run("parent")
        assert view.status == "finished"
        assert view.steps().index.tolist() == [0, 1]  # the parent went on writing


def test_opening_a_new_database_waits_while_another_process_holds_it(sqlite_path, monkeypatch):
    # What a sweep launch does: another process takes the write lock between this
    # one creating the schema and switching to WAL (SQLite then fails at once).
    from gradtrace.tracer.storage import db as tdb

    real_migrate = tdb.migrate
    other = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)

    def migrate_then_busy(engine, url):
        revision = real_migrate(engine, url)
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(0.5, other.execute, ["COMMIT"]).start()
        return revision

    monkeypatch.setattr(tdb, "migrate", migrate_then_busy)
    with tracer.record("sweep", db=sqlite_path) as run:
        run.log(1.0)
    other.close()
    with sqlite3.connect(sqlite_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


# -- the terminal -----------------------------------------------------------------

EVIL = "\x1b[2J\x1b]0;owned\x07\x1b]8;;http://x\x07link\x1b]8;;\x07\x9b31m\u202e"


def test_the_cli_escapes_terminal_control_codes_in_every_user_text(sqlite_path):
    from click.testing import CliRunner

    from gradtrace.cli.main import cli

    x = Value(1.0)
    with (
        pytest.raises(ValueError),
        tracer.record(
            "evil" + EVIL, db=sqlite_path, config={"k" + EVIL: "v" + EVIL}, notes=EVIL
        ) as run,
    ):
        run.watch([x])
        run.log(x * 2, **{"m" + EVIL: 1.0})
        raise ValueError("error text" + EVIL)
    db = ["--db", str(sqlite_path)]
    outputs = [
        CliRunner().invoke(cli, ["runs", *db]).output,
        CliRunner().invoke(cli, ["show", "evil", *db]).output,
        CliRunner().invoke(cli, ["show", "nothing" + EVIL, *db]).output,
    ]
    for out in outputs:
        assert not set(out) & set("\x1b\x07\x9b\u202e"), repr(out)
    assert "evil\\x1b[2J" in outputs[0]
    assert "error text\\x1b" in outputs[1] and "m\\x1b" in outputs[1]
    assert "nothing\\x1b[2J" in outputs[2]


# -- readers: references, missing files, export -------------------------------------


def test_a_reader_never_creates_a_database(tmp_path):
    typo = tmp_path / "typo.db"
    for readonly in (False, True):
        with pytest.raises(tracer.NotAGradtraceDatabase, match=f"no database at {typo}"):
            tracer.connect(typo, readonly=readonly)
    assert list(tmp_path.iterdir()) == []


def test_run_references_match_alike_on_both_backends(db_url):
    for name in ("Moons-a", "moons-b"):
        tracer.record(name, db=db_url).close()
    with tracer.connect(db_url) as store:
        assert store.run("Moons").name == "Moons-a"  # case-sensitive, as on PostgreSQL
        assert store.run("moons").name == "moons-b"
        assert store.run("moons-").name == "moons-b"
        with pytest.raises(tracer.RunNotFound, match="no run matches 'MOONS'"):
            store.run("MOONS")
        with pytest.raises(tracer.RunNotFound, match="50000 characters long"):
            store.run("x" * 50_000)
        with pytest.raises(tracer.RunNotFound, match="NUL"):
            store.run("moons\x00")
        with pytest.raises(tracer.RunNotFound, match="no run matches '%'"):
            store.run("%")


def test_export_defaults_work_out_of_the_box(sqlite_path, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gradtrace.cli.main import cli

    name = "ü" * 200  # 400 bytes: too long for one file name as it is
    with tracer.record(name, db=sqlite_path) as run:
        run.log(1.0)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # the README install has no pyarrow
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["export", "üü", "--db", str(sqlite_path)])
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name.startswith("_" * 60 + "-") and len(folder.name) == 69
    assert (folder / "metrics.csv").read_text().splitlines()[1].startswith("0,1.0")


# -- memory and liveness ------------------------------------------------------------


def test_a_graph_that_changes_every_step_keeps_memory_bounded(sqlite_path):
    from gradtrace.tracer.recording.capture import MAX_SHAPES

    w = Value(0.5, label="w")
    with tracer.record("growing", db=sqlite_path) as run:
        run.watch([w])
        for k in range(3 * MAX_SHAPES):
            loss = w * 1.0
            for _ in range(k % (2 * MAX_SHAPES)):  # a new shape each step, then old ones again
                loss = loss + w
            loss.backward()
            run.log(loss)
            w.grad = 0.0
            assert len(run.graphs.shapes) <= MAX_SHAPES
    with tracer.connect(sqlite_path) as store:
        view = store.run("growing")
        for k in (0, 5, 2 * MAX_SHAPES - 1, 2 * MAX_SHAPES, 3 * MAX_SHAPES - 1):
            nodes = view.nodes(k)
            assert nodes["value"].iloc[-1] == 0.5 * (1 + k % (2 * MAX_SHAPES)), k


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_writer_in_another_pid_namespace_is_not_judged_by_our_pids(sqlite_path):
    from datetime import UTC, datetime, timedelta

    from gradtrace.tracer.storage.procinfo import pid_namespace

    tracer.record("container", db=sqlite_path).close()
    pid, ours = _dead_pid(), pid_namespace()
    assert ours is not None
    now = datetime.now(UTC)
    cases = [  # (the writer's namespace, its last heartbeat, what readers must say)
        ("other-boot/pid:[4026532000]", now, "running"),  # its pid means nothing here
        (ours, now, "crashed"),  # same namespace: the pid is gone
        ("other-boot/pid:[4026532000]", now - timedelta(hours=2), "crashed"),  # silent
    ]
    for ns, heartbeat, expected in cases:
        with sqlite3.connect(sqlite_path) as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', pid = ?, pid_ns = ?, heartbeat_at = ?",
                (pid, ns, heartbeat.strftime("%Y-%m-%d %H:%M:%S.%f")),
            )
        conn.close()
        with tracer.connect(sqlite_path, readonly=True) as store:
            assert store.runs()["status"].tolist() == [expected], ns
            assert store.run("container").status == expected


def test_one_run_with_text_no_check_refused_does_not_hide_the_others(sqlite_path):
    """A row written before validation existed (a lone surrogate in its config)."""
    from click.testing import CliRunner

    from gradtrace.cli.main import cli

    for name in ("good", "bad"):
        tracer.record(name, db=sqlite_path, config={"data": "cafe.csv"}).close()
    with sqlite3.connect(sqlite_path) as conn:  # JSON's \\udce9 escape: a lone surrogate
        conn.execute("""UPDATE runs SET config = '{"data": "caf\\udce9.csv"}' WHERE name = 'bad'""")
    conn.close()
    with tracer.connect(sqlite_path) as store:
        runs = store.runs()
        assert sorted(runs["name"]) == ["bad", "good"]
        assert set(runs["config.data"]) == {"caf\ufffd\ufffd\ufffd.csv", "cafe.csv"}
        assert store.run("bad").config == {"data": "caf\ufffd\ufffd\ufffd.csv"}
    result = CliRunner().invoke(cli, ["runs", "--db", str(sqlite_path)])
    assert result.exit_code == 0 and "good" in result.output and "bad" in result.output


def test_postgresql_limits_are_checked_alike_on_both_backends(db_url):
    """What SQLite took and PostgreSQL refused mid-training: now equal on both."""
    big_seed = 2**63 - 1
    with tracer.record("limits", db=db_url, seed=big_seed) as run:
        run.log(1.0, step=2**31 - 1)
        with pytest.raises(tracer.InvalidArgument, match="step = 2147483648"):
            run.log(1.0)  # the next automatic step is past the column's range
    with tracer.connect(db_url) as store:
        view = store.run("limits")
        assert view.info["seed"] == big_seed
        assert view.steps().index.tolist() == [2**31 - 1]
        assert store.runs()["status"].tolist() == ["finished"]


def test_the_sigterm_handler_is_ours_only_while_runs_are_open(sqlite_path):
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with tracer.record("a", db=sqlite_path):
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back

    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with tracer.record("b", db=sqlite_path):
            assert signal.getsignal(signal.SIGTERM) is own  # a program's own handler stays
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)

    installed = []

    def from_a_thread():
        with tracer.record("c", db=sqlite_path):
            installed.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=from_a_thread)
    thread.start()
    thread.join()
    assert installed == [signal.SIG_DFL]  # handlers are only installed from the main thread
