"""The random-kill harness: recording processes killed with SIGKILL or SIGTERM at random
moments, with the sync and the background writer, on SQLite and PostgreSQL.

Each trial's committed steps must be exactly the reference training's first n steps,
bit for bit (node traces, metrics, parameters, updates), with nothing of a step that
did not commit; SIGTERM must end the run ``terminated`` and the process by the
signal, SIGKILL leaves it ``crashed``. 4 combinations of signal and writer x 7
trials x 2 backends = 56 trials; the random moments are seeded, and the seed is in
each assertion message.
"""

from __future__ import annotations

import random
import signal
import time
import zlib

import pytest
from helpers.trace import (
    assert_steps_match,
    poll_steps,
    replay,
    start_child,
    table_counts,
    wait_ready,
)

from gradtrace import tracer

pytestmark = pytest.mark.slow

TRIALS = 7
AT_ONCE = 4  # children recording into one database together


QUEUE_SIZE = 16  # the recorder's default


def _check(view, how: str, note: str, returned: int, background: bool) -> int:
    n = view.info["steps"]
    lost = returned - n
    bound = QUEUE_SIZE if background and how == "kill" else 0
    # -1: a step committed, then the signal came before its log() returned.
    assert -1 <= lost <= bound, f"{note}: {returned} log() calls returned, {n} committed"
    counts = table_counts(view.store.engine, view.key)
    assert counts["steps"] == counts["traces"] == n, note
    assert counts["metrics"] == 2 * n, note
    assert_steps_match(view, replay(n))
    assert set(view.updates()["step"]) <= set(range(n)), note
    expected = "terminated" if how == "term" else "crashed"
    assert view.status == expected, note
    return lost


@pytest.mark.parametrize("background", [False, True], ids=["sync", "background"])
@pytest.mark.parametrize("how", ["kill", "term"])
def test_random_kills_keep_every_committed_step(db_url, tmp_path, how, background):
    db = db_url.removeprefix("sqlite:///")
    seed = zlib.crc32(f"{how}-{background}-{db_url.split(':')[0]}".encode()) % 10_000
    rng = random.Random(seed)
    sig = signal.SIGKILL if how == "kill" else signal.SIGTERM
    lost = []
    for batch in range(0, TRIALS, AT_ONCE):
        names = [f"{how}-{i}" for i in range(batch, min(batch + AT_ONCE, TRIALS))]
        procs = {
            name: start_child(
                tmp_path, db, name, steps=None, background=background, delay=0.002, echo=True
            )
            for name in names
        }
        for name, proc in procs.items():
            poll_steps(db, name, rng.randint(1, 25), proc)
            time.sleep(rng.uniform(0, 0.05))  # anywhere in a step: training or writing
            proc.send_signal(sig)
        returned = {}
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == -sig, (name, seed, proc.returncode)
            returned[name] = len([line for line in out.split() if line.isdigit()])
        with tracer.connect(db_url, readonly=True) as store:
            for name in names:
                note = f"{name}, seed {seed}"
                lost.append(_check(store.run(name), how, note, returned[name], background))
    assert len(lost) == TRIALS
    writer = "background" if background else "sync"
    backend = db_url.split(":")[0].split("+")[0]
    bound = QUEUE_SIZE if background and how == "kill" else 0
    most = max(0, *lost)  # -1: committed, killed before log() returned
    print(f"\n| {sig.name} | {writer} | {backend} | {TRIALS} | {most} | {bound} |")


def test_a_sweep_opening_one_new_database_at_once(tmp_path):
    """Processes started together on a file that does not exist yet all record."""
    for trial in range(3):
        db = tmp_path / f"sweep{trial}.db"
        go = tmp_path / f"go{trial}"
        procs = [start_child(tmp_path, str(db), f"s{i}", steps=3, go=go) for i in range(5)]
        wait_ready(procs)
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        with tracer.connect(db, readonly=True) as store:
            runs = store.runs()
            assert sorted(runs["name"]) == [f"s{i}" for i in range(5)]
            assert runs["steps"].tolist() == [3] * 5
