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


def _check(view, how: str, note: str) -> int:
    n = view.info["steps"]
    counts = table_counts(view.store.engine, view.key)
    assert counts["steps"] == counts["traces"] == n, note
    assert counts["metrics"] == 2 * n, note
    assert_steps_match(view, replay(n))
    assert set(view.updates()["step"]) <= set(range(n)), note
    expected = "terminated" if how == "term" else "crashed"
    assert view.status == expected, note
    return n


@pytest.mark.parametrize("background", [False, True], ids=["sync", "background"])
@pytest.mark.parametrize("how", ["kill", "term"])
def test_random_kills_keep_every_committed_step(db_url, tmp_path, how, background):
    db = db_url.removeprefix("sqlite:///")
    seed = zlib.crc32(f"{how}-{background}-{db_url.split(':')[0]}".encode()) % 10_000
    rng = random.Random(seed)
    sig = signal.SIGKILL if how == "kill" else signal.SIGTERM
    kept = []
    for batch in range(0, TRIALS, AT_ONCE):
        names = [f"{how}-{i}" for i in range(batch, min(batch + AT_ONCE, TRIALS))]
        procs = {
            name: start_child(tmp_path, db, name, steps=None, background=background, delay=0.002)
            for name in names
        }
        for name, proc in procs.items():
            poll_steps(db, name, rng.randint(1, 25), proc)
            time.sleep(rng.uniform(0, 0.05))  # anywhere in a step: training or writing
            proc.send_signal(sig)
        for name, proc in procs.items():
            proc.communicate(timeout=60)
            assert proc.returncode == -sig, (name, seed, proc.returncode)
        with tracer.connect(db_url, readonly=True) as store:
            for name in names:
                kept.append(_check(store.run(name), how, f"{name}, seed {seed}"))
    assert len(kept) == TRIALS and min(kept) >= 1


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
