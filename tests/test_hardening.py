"""Issue 13's breaks, one test each: the recorder and readers under hostile conditions."""

from __future__ import annotations

import sqlite3
from contextlib import nullcontext

import pytest
from gradtrace.engine import Value

from gradtrace import tracer


def test_one_refused_step_in_background_loses_that_step_alone(sqlite_path):
    tracer.record("setup", db=sqlite_path).close()
    with sqlite3.connect(sqlite_path) as conn:  # the database refuses step 5, and only it
        conn.execute(
            "CREATE TRIGGER no5 BEFORE INSERT ON steps WHEN NEW.step = 5 "
            "BEGIN SELECT RAISE(ABORT, 'step 5 refused'); END"
        )
    conn.close()
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
