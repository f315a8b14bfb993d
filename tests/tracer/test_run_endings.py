"""However a run ends, its status is written and the user's own error is what they
see (issue 19, items 5 and 9)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from gradtrace.engine import Value
from gradtrace.tracer.recording.writer import BackgroundWriter, StepBatch
from helpers.trace import refusing_step, train

from gradtrace import tracer
from gradtrace.cli.main import cli


@pytest.mark.parametrize("background", [True, False], ids=["background", "sync"])
def test_an_error_text_with_a_surrogate_or_nul_still_closes_the_run(db_url, background):
    message = "bad byte \udc80, a NUL \x00 and \u2028 here"
    with (
        pytest.raises(ValueError, match="bad byte") as info,
        tracer.record("odd-error", db=db_url, background=background) as run,
    ):
        list(train(2, run))
        raise ValueError(message)
    assert str(info.value) == message  # the user's error, not UnicodeEncodeError
    with tracer.connect(db_url, readonly=True) as store:
        view = store.run(run.id)
        assert view.status == "failed" and view.info["steps"] == 2
        error = view.info["error"]
    assert "ValueError: bad byte \\udc80, a NUL \\x00 and \u2028 here" in error


def test_the_background_writer_holds_at_most_queue_size_uncommitted_steps():
    """Issue 19, item 6: the steps a kill -9 can lose are those handed over and not
    committed, queued or in the thread's open transaction: at most ``queue_size``."""
    release = threading.Event()
    writing = []

    class Stuck(BackgroundWriter):
        def _write(self, items):
            writing.append(len(items))
            release.wait(30)  # the commit takes forever: a kill -9 comes now

    engine = sa.create_engine("sqlite://")
    writer = Stuck(engine, run_key=1, queue_size=8, group=16)
    returned = []

    def train() -> None:
        for k in range(40):
            writer.submit(StepBatch(step=k, wall_time=0.0))
            returned.append(k)  # log(k) has returned

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(returned) < 40:
        before = len(returned)
        time.sleep(0.2)
        if len(returned) == before:
            break  # training is held back
    assert writing, "the writer thread took a group"
    assert len(returned) == 8, f"{len(returned)} steps returned from log(), none committed"
    release.set()
    thread.join(30)
    writer.close()
    assert len(returned) == 40
    engine.dispose()


def test_a_refused_background_step_keeps_the_previous_steps_update(sqlite_path):
    """Issue 19, item 9: step 5 carries step 4's update (known at log 5); when the
    database refuses step 5, step 4's update is still stored."""
    refusing_step(sqlite_path, 5)
    w = Value(1.0)
    run = tracer.record("bg", db=sqlite_path, background=True)
    run.watch([w])
    for _ in range(10):
        loss = w * w
        w.grad = 0.0
        loss.backward()
        with contextlib.suppress(tracer.RecorderError):
            run.log(loss, lr=0.1)
        w.data -= 0.1 * w.grad
    with contextlib.suppress(tracer.RecorderError):
        run.close()
    with tracer.connect(sqlite_path) as store:
        updates, kept = store.run("bg").updates(), store.run("bg").steps().index.tolist()
    assert 5 not in kept and 4 in kept
    assert set(kept) <= set(updates["step"])  # every kept step's update, 4's included
    row = updates.set_index("step").loc[4]
    assert row["value_after"] == row["value_before"] - 0.1 * row["grad"]


def test_a_run_name_of_invalid_utf8_hides_no_other_run(sqlite_path):
    """Issue 19, item 8: a row another tool wrote with bytes that are not UTF-8 is
    listed with those bytes escaped; every other run lists as before."""
    for name in ("good", "bad"):
        with tracer.record(name, db=sqlite_path) as run:
            list(train(2, run))
    with sqlite3.connect(sqlite_path) as conn:
        conn.execute("UPDATE runs SET name = CAST(X'ff626164' AS TEXT) WHERE name = 'bad'")
    conn.close()
    with tracer.connect(sqlite_path, readonly=True) as store:
        runs = store.runs()
        assert sorted(runs["name"]) == ["\\xffbad", "good"]
        assert store.run("good").info["steps"] == 2
    out = CliRunner().invoke(cli, ["runs", "--db", str(sqlite_path)])
    assert out.exit_code == 0, out.output
    assert "good" in out.output and "\\xffbad" in out.output


def test_a_reader_keeps_a_bounded_number_of_graph_shapes(sqlite_path):
    """Issue 19, item 9: the dashboard's reader of a run whose graph changes every
    step keeps the last GRAPHS_KEPT shapes, not every shape it was asked for."""
    from gradtrace.tracer.read.graphreads import GRAPHS_KEPT

    w = Value(0.5)
    steps = GRAPHS_KEPT + 20
    with tracer.record("shapes", db=sqlite_path, background=False) as run:
        run.watch([w])
        for k in range(steps):
            loss = w * 1.0
            for _ in range(k):  # one more node each step: a new shape
                loss = loss + w
            loss.backward()
            run.log(loss)
            w.grad = 0.0
    with tracer.connect(sqlite_path, readonly=True) as store:
        view = store.run("shapes")
        for k in (*range(steps), 0, 1):  # the first shapes again, after eviction
            nodes = view.nodes(k)
            assert len(nodes) == k + 3 and nodes["value"].iloc[-1] == 0.5 * (1 + k)
            assert len(view._graphs) <= GRAPHS_KEPT


def test_a_name_that_is_another_runs_id_prefix_shadows_nothing(db_url):
    """Issue 19, item 9: a run named like another run's id prefix would hide that run
    from its prefix: the reference is ambiguous, named as such; longer prefixes and
    whole ids reach each run."""
    tracer.record("first", db=db_url).close()
    with tracer.connect(db_url) as store:
        target = store.run("first").id
    prefix = target[:6]
    with tracer.record(prefix, db=db_url) as named:
        pass
    with tracer.connect(db_url, readonly=True) as store:
        with pytest.raises(tracer.AmbiguousRun, match="prefix of the id") as info:
            store.run(prefix)
        assert target[:8] in str(info.value) and named.id[:8] in str(info.value)
        assert store.run(target[:12]).id == target
        assert store.run(named.id).name == prefix
        assert store.run("first").id == target  # names that are not hex are untouched
    # A short name is a name, whatever ids begin with it: "a" is a prefix of 1 id in 16.
    with tracer.record(target[:1], db=db_url) as short:
        pass
    with tracer.connect(db_url, readonly=True) as store:
        assert store.run(target[:1]).id == short.id
    out = CliRunner().invoke(cli, ["show", prefix, "--db", db_url])
    assert out.exit_code == 1 and "prefix of the id" in out.output


def test_the_dashboard_refuses_a_host_that_is_no_address():
    """Issue 19, item 10: `gradtrace dashboard --host 256.1.1.1` is a usage error
    naming the value, before the server tries to bind it."""
    for host in ("256.1.1.1", "1.2.3", "bad host", "a..b"):
        out = CliRunner().invoke(cli, ["dashboard", "--host", host, "--db", "none.db"])
        assert out.exit_code == 2, (host, out.output)
        assert "is not an IP address or a host name" in out.output and repr(host) in out.output
        assert "Traceback" not in out.output


INVISIBLE = "\u2028\u2029\u200e\u200f\u061c\u200b\u200d\u2060\ufeff\xad"


def test_show_and_why_escape_invisible_and_direction_characters(sqlite_path):
    """Issue 19, item 9: a line separator, direction marks, zero-width and soft-hyphen
    characters print escaped, so two names that look alike are told apart."""
    name = "look" + INVISIBLE + "alike"
    with tracer.record(name, db=sqlite_path, notes="n" + INVISIBLE) as run:
        w = Value(1.0)
        run.watch([w])
        run.log(w * Value(float("nan"), label="x" + INVISIBLE), **{"m" + INVISIBLE: 1.0})
    db = ["--db", str(sqlite_path)]
    for command in (["show", run.id], ["why", run.id], ["runs"]):
        out = CliRunner().invoke(cli, [*command, *db])
        assert out.exit_code == 0, out.output
        assert not set(out.output) & set(INVISIBLE), (command, repr(out.output))
        assert "\\u2060\\ufeff\\xad" in out.output, (command, out.output)


@pytest.mark.slow
@pytest.mark.parametrize(
    "ending,code,status",
    [("exit(5)", 5, "failed"), ("quit(3)", 3, "failed"), ("exit()", 0, "finished")],
)
def test_the_exit_builtins_without_a_with_block_decide_the_status(tmp_path, ending, code, status):
    """Issue 19, item 9: ``exit(5)`` (site's builtin, which raises SystemExit itself)
    outside a ``with`` block ends the run ``failed``, like ``sys.exit(5)``."""
    db = tmp_path / "runs.db"
    script = (
        "from gradtrace import tracer\n"
        "from gradtrace.engine import Value\n"
        f"run = tracer.record('bare', db={str(db)!r})\n"
        "x = Value(1.0)\n"
        "run.watch([x])\n"
        "run.log(x * 2)\n"
        f"{ending}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    with tracer.connect(db, readonly=True) as store:
        view = store.run("bare")
    assert view.status == status and view.info["steps"] == 1
    if status == "failed":
        assert view.info["error"] == f"SystemExit({code})"
