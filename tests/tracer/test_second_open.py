"""A second open of a SQLite database in a process that already has it open.

Closing any file handle on a SQLite file drops every POSIX lock the process holds
on it (SQLite's "How To Corrupt An SQLite Database File", section 2.2): another
process then believes it is the last connection and checkpoints and deletes the
``-wal`` and ``-shm`` under the live one. So gradtrace never opens, copies or
closes a handle on a database file while it has connections to it.

The test records in this process while two other processes record into the same
file, and reads the file again from this process mid-run, many times: the file
passes ``PRAGMA quick_check`` and every run reads back whole and bit for bit.
"""

from __future__ import annotations

import sqlite3

import pytest
from gradtrace.tracer.storage import sqlitefile
from helpers.trace import assert_steps_match, finish, replay, start_child, train, wait_ready

from gradtrace import tracer

pytestmark = pytest.mark.slow

STEPS = 40
CHILD_STEPS = 6  # the others finish, and close the file, while this process records


@pytest.mark.parametrize("background", [False, True], ids=["sync", "background"])
def test_a_read_mid_run_in_the_recording_process_corrupts_nothing(tmp_path, background):
    db = str(tmp_path / "runs.db")
    with tracer.record("setup", db=db) as run:  # the schema, before anyone races for it
        for _ in train(1, run):
            pass
    go = tmp_path / "go"
    children = [
        start_child(tmp_path, db, f"other-{i}", steps=CHILD_STEPS, seed=i + 1, go=go)
        for i in range(2)
    ]
    wait_ready(children)
    with tracer.record("here", db=db, background=background) as run:
        for k, _ in enumerate(train(STEPS, run)):
            if k % 4 == 2:
                # The second open: a reader in the recording process, mid-run.
                with tracer.connect(db) as store:
                    assert "here" in set(store.runs()["name"])
                go.touch()  # the others start once this process has read its file
    for proc in children:
        code, _, err = finish(proc, timeout=120)
        assert code == 0, err
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    with tracer.connect(db) as store:
        runs = (("here", 0, STEPS), ("other-0", 1, CHILD_STEPS), ("other-1", 2, CHILD_STEPS))
        for name, seed, n in runs:
            view = store.run(name)
            assert view.status == "finished", name
            assert_steps_match(view, replay(n, seed=seed))


def test_no_handle_is_opened_on_a_file_this_process_has_open(tmp_path, monkeypatch):
    """The guard itself: once a connection exists, the file checks read no bytes of
    the file through a handle of their own (each open and close would drop locks)."""
    db = tmp_path / "runs.db"
    with tracer.record("a", db=str(db)) as run:
        for _ in train(2, run):
            pass
        opened: list[str] = []
        real_open = sqlitefile.open_file

        def spy(path, *args, **kwargs):
            opened.append(str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(sqlitefile, "open_file", spy)
        with tracer.connect(str(db)) as store:
            assert list(store.runs()["name"]) == ["a"]
        assert opened == []
    # With no connection left in the process, a new open reads the header again.
    with tracer.connect(str(db)) as store:
        assert list(store.runs()["name"]) == ["a"]
    assert opened == [str(db)]
