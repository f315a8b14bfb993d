"""Runs that end badly, in real processes: Ctrl-C, an exception, kill -9, no close().

Each child (``helpers.trace.CHILD``, written to tmp_path) records the deterministic
reference training; the test replays it in-process and compares what the
database kept with it bit for bit. Subprocess tests run on SQLite and, where the
behaviour is not SQLite's own, on PostgreSQL too.
"""

from __future__ import annotations

import signal
import sqlite3

import pytest
from gradtrace.engine import SGD
from helpers.trace import (
    assert_steps_match,
    batch_loss,
    bits,
    finish,
    poll_steps,
    replay,
    small_model,
    start_child,
    table_counts,
    train,
    wait_ready,
)

from gradtrace import tracer

pytestmark = pytest.mark.slow

N_PARAMS = len(replay(1)[0].before)


def _db(db_url: str) -> str:
    """A subprocess gets a plain path for SQLite (what users pass), the URL otherwise."""
    return db_url.removeprefix("sqlite:///")


def _check_completed(view, n: int) -> None:
    """Steps 0..n-1 are all there, each whole, and nothing of a step that did not finish."""
    expected = replay(n)
    assert view.info["steps"] == n
    assert_steps_match(view, expected)
    counts = table_counts(view.store.engine, view.key)
    assert counts["steps"] == counts["traces"] == n
    assert counts["metrics"] == 2 * n
    assert set(view.updates()["step"]) <= set(range(n)), "an update of a step never logged"


MODES = ("with", "bare")  # a `with record(...)` block; a module-level run never closed


def test_ctrl_c_marks_interrupted_and_keeps_every_completed_step(db_url, tmp_path):
    db = _db(db_url)
    procs = {m: start_child(tmp_path, db, f"sigint-{m}", steps=None, mode=m) for m in MODES}
    for mode, proc in procs.items():
        poll_steps(db, f"sigint-{mode}", 5, proc)
    for proc in procs.values():
        proc.send_signal(signal.SIGINT)
    for proc in procs.values():
        code, _, err = finish(proc)
        assert code != 0 and "KeyboardInterrupt" in err
    with tracer.connect(db) as store:
        for mode in MODES:
            view = store.run(f"sigint-{mode}")
            assert view.status == "interrupted", mode
            assert view.info["error"] == "KeyboardInterrupt"
            assert view.info["ended_at"] is not None
            n = view.info["steps"]
            assert n >= 5
            _check_completed(view, n)
            # Every completed step has its update, the last one written on the way
            # out. Ctrl-C may land inside opt.step(): each parameter was updated or not.
            last = view.updates(steps=n - 1).sort_values("param")
            assert len(last) == N_PARAMS, mode
            after, expected = bits(last["value_after"]), replay(n)[n - 1]
            assert ((after == bits(expected.after)) | (after == bits(expected.before))).all()


def test_exception_marks_failed_with_the_error_text(db_url, tmp_path):
    db = _db(db_url)
    procs = {m: start_child(tmp_path, db, f"boom-{m}", steps=20, mode=m, raise_at=4) for m in MODES}
    for proc in procs.values():
        code, _, err = finish(proc)
        assert code == 1 and "ValueError: boom at step 4" in err
    expected = replay(4)
    with tracer.connect(db) as store:
        for mode in MODES:
            view = store.run(f"boom-{mode}")
            assert view.status == "failed", mode
            assert "ValueError: boom at step 4" in view.info["error"]
            assert "Traceback" in view.info["error"]
            _check_completed(view, 4)
            last = view.updates(steps=3).sort_values("param")
            assert (bits(last["value_after"]) == bits(expected[3].after)).all()


def test_kill_9_keeps_every_committed_step_and_reads_as_crashed(db_url, tmp_path):
    db = _db(db_url)
    proc = start_child(tmp_path, db, "killed", steps=None)
    poll_steps(db, "killed", 8, proc)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    for readonly in (True, False):
        with tracer.connect(db, readonly=readonly) as store:
            runs = store.runs()
            assert runs.loc[runs["name"] == "killed", "status"].tolist() == ["crashed"]
            view = store.run("killed")
            assert view.status == "crashed" and view.info["ended_at"] is None
            n = view.info["steps"]
            assert n >= 8
            _check_completed(view, n)
            # No close(): the last step's update was never written, every other one was.
            assert sorted(set(view.updates()["step"])) == list(range(n - 1))


def test_run_never_closed_is_finished_at_exit(tmp_path):
    """A script that just ends without close(): the run a module global, or dropped
    inside a function; with the synchronous and with the background writer."""
    procs = {}
    for mode in ("bare", "function"):
        for background in (False, True):
            folder = tmp_path / f"{mode}-{background}"
            folder.mkdir()
            db = str(folder / "runs.db")
            procs[db] = start_child(
                tmp_path, db, "no-close", steps=12, mode=mode, background=background
            )
    expected = replay(12)
    for db, proc in procs.items():
        code, out, err = finish(proc)
        assert code == 0, err
        assert out.strip() == "done"
        with tracer.connect(db) as store:
            view = store.run("no-close")
            assert view.status == "finished", db
            _check_completed(view, 12)
            last = view.updates(steps=11).sort_values("param")
            assert (bits(last["value_after"]) == bits(expected[11].after)).all()


def test_two_processes_record_into_one_database(db_url, tmp_path):
    db = _db(db_url)
    go = tmp_path / "go"
    procs = [start_child(tmp_path, db, f"proc{i}", steps=15, seed=i, go=go) for i in range(2)]
    wait_ready(procs)
    go.touch()
    for proc in procs:
        code, _, err = finish(proc)
        assert code == 0, err
    with tracer.connect(db) as store:
        assert sorted(store.runs()["name"]) == ["proc0", "proc1"]
        for i in range(2):
            view = store.run(f"proc{i}")
            assert view.status == "finished"
            expected = replay(15, seed=i)
            assert_steps_match(view, expected)
            assert table_counts(store.engine, view.key) == {
                "steps": 15,
                "metrics": 30,
                "updates": 15 * N_PARAMS,
                "traces": 15,
                "graphs": 1,
                "parameters": N_PARAMS,
            }


def test_reader_reads_while_a_writer_writes(db_url, tmp_path):
    db = _db(db_url)
    proc = start_child(tmp_path, db, "live", steps=30, delay=0.02)
    poll_steps(db, "live", 1, proc)
    seen = []
    with tracer.connect(db, readonly=True) as store:
        view = store.run("live")
        while proc.poll() is None:
            steps = view.refresh().info["steps"]
            metrics = view.metrics()
            assert len(metrics) >= steps  # committed together
            if steps:
                nodes = view.nodes(steps - 1)
                assert len(nodes) == len(replay(1)[0].node_data)
            seen.append(steps)
        code, _, err = finish(proc)
        assert code == 0, err
        assert seen == sorted(seen)
        assert any(0 < s < 30 for s in seen), seen
        assert view.refresh().status == "finished"
        _check_completed(view, 30)


def test_failed_transaction_does_not_break_the_next_steps(db_url, monkeypatch):
    """A step whose transaction fails (with a new graph shape in it) is not half
    remembered: the next step of that shape stores its graph again, and the previous
    step's update, which was in the failed transaction, is written by the next one."""
    from gradtrace.tracer.recording.writer import Writer

    original, failures = Writer._steps, []

    def flaky(self, conn, batches):  # the steps of one transaction (one here: sync)
        original(self, conn, batches)
        if [b.step for b in batches] == [2] and not failures:
            failures.append(2)
            raise OSError("disk hiccup")

    monkeypatch.setattr(Writer, "_steps", flaky)
    model, X, y = small_model()
    opt = SGD(model.parameters(), lr=0.1)
    logged = []
    # The synchronous writer: its error reaches the log() of the failing step itself.
    with tracer.record("hiccup", db=db_url, background=False) as run:
        run.watch(model, optimizer=opt)
        for k in range(6):
            loss, acc = batch_loss(model, X, y, range(0, 20) if k < 2 else range(0, 10))
            model.zero_grad()
            loss.backward()
            try:
                step = run.log(loss, acc=acc)
            except OSError:
                assert k == 2
            else:
                logged.append((step, bits([v.data for v in loss.topo()])))
            opt.step()
    assert failures == [2]
    with tracer.connect(db_url) as store:
        view = store.run("hiccup")
        assert view.status == "finished"
        assert [s for s, _ in logged] == view.steps().index.tolist() == [0, 1, 2, 3, 4]
        assert view.steps()["graph_key"].nunique() == 2
        for step, data in logged:
            assert (bits(view.nodes(step)["value"]) == data).all()
        updates = view.updates()
        assert (updates.groupby("step").size() == N_PARAMS).all()
        assert sorted(set(updates["step"])) == [0, 1, 2, 3, 4]
        wide = {
            c: updates.pivot(index="step", columns="param", values=c)
            for c in ("value_before", "value_after")
        }
        after, before = wide["value_after"].to_numpy(), wide["value_before"].to_numpy()
        assert (bits(after[:-1]) == bits(before[1:])).all()


def test_ctrl_c_just_after_a_commit_keeps_that_steps_update(db_url, monkeypatch):
    """A real SIGINT delivered the moment step 3 is committed, before log() returns:
    step 3 counts as logged, and its update (none was applied) is written on close."""
    from gradtrace.tracer.recording.writer import StepBatch, Writer

    original = Writer._write

    def write_then_ctrl_c(self, items):
        original(self, items)
        if any(isinstance(i, StepBatch) and i.step == 3 for i in items):
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Writer, "_write", write_then_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # The synchronous writer: the commit (and this SIGINT) happen inside log().
        run_ = tracer.record("late", db=db_url, background=False)
        with pytest.raises(KeyboardInterrupt), run_ as run:
            list(train(10, run))
    finally:
        signal.signal(signal.SIGINT, previous)
    expected = replay(4)
    with tracer.connect(db_url) as store:
        view = store.run("late")
        assert view.status == "interrupted"
        assert_steps_match(view, expected)
        last = view.updates(steps=3).sort_values("param")
        assert len(last) == N_PARAMS
        assert (bits(last["value_after"]) == bits(expected[3].before)).all()
