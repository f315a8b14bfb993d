"""The per-run totals the writer keeps: equal to what the rows say, rebuilt the
same by the migration's backfill, and the cheap "anything new?" stamp."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from gradtrace.engine import Value
from gradtrace.tracer.read import runfacts
from gradtrace.tracer.storage.db import alembic_config
from helpers.trace import bits, train

from gradtrace import tracer

SUMMARY_SQL = (
    "SELECT r.name, m.name, m.last_step, m.last_value, m.last_raw, m.min_value, m.max_value"
    " FROM run_metrics m JOIN runs r ON r.run_key = m.run_key ORDER BY r.name, m.name"
)


def _sql(url: str, text: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(text)).all()
    finally:
        engine.dispose()


def _record_three(db_url: str) -> None:
    with tracer.record("clean", db=db_url) as run:
        list(train(4, run))
    with tracer.record("nan-metric", db=db_url) as run:
        for k, acc in enumerate([0.5, 0.25, math.nan, 0.75, -0.0]):
            run.log(Value(1.0 / (k + 1)), acc=acc)
    w = Value(1.0)
    with tracer.record("param-inf", db=db_url) as run:
        run.watch([w])
        for k in range(5):
            loss = w * 2.0
            loss.backward()
            run.log(loss)
            # Step 2's "update" makes w inf: the origin is step 2, seen at step 3.
            w.data = math.inf if k == 2 else w.data - 0.1
            w.grad = 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_summary_matches_the_rows(db_url):
    _record_three(db_url)
    with tracer.connect(db_url, readonly=True) as store:
        runs = store.runs().set_index("name")
        assert pd.isna(runs.loc["clean", "diverged_at_step"])
        assert runs.loc["nan-metric", "diverged_at_step"] == 2
        assert runs.loc["param-inf", "diverged_at_step"] == 2
        for name in ("nan-metric", "param-inf"):
            assert runs.loc[name, "diverged_at_step"] == store.run(name).first_nonfinite().step
        for name in ("clean", "nan-metric", "param-inf"):
            metrics = store.run(name).metrics().drop(columns="wall_time")
            rows = {r[1]: r for r in _sql(db_url, SUMMARY_SQL) if r[0] == name}
            assert sorted(rows) == sorted(metrics.columns)
            for metric, col in metrics.items():
                col = col.dropna()  # NaN steps and steps without this metric
                _, _, last_step, _, _, lo, hi = rows[metric]
                assert last_step == metrics.index[-1]
                assert (lo, hi) == (col.min(), col.max())
                assert bits(runs.loc[name, f"metric.{metric}"]) == bits(metrics[metric].iloc[-1])
        # -0.0 keeps its sign in the run list.
        assert bits(runs.loc["nan-metric", "metric.acc"]) == bits(-0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backfill_rebuilds_the_same_summary(db_url):
    _record_three(db_url)
    kept = _sql(db_url, SUMMARY_SQL)
    firsts = _sql(db_url, "SELECT name, first_nonfinite_step FROM runs ORDER BY name")
    assert firsts == [("clean", None), ("nan-metric", 2), ("param-inf", 2)]
    engine = sa.create_engine(db_url)
    try:
        for target in ("0001", "head"):
            with engine.begin() as conn:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, target) if target == "0001" else command.upgrade(cfg, target)
    finally:
        engine.dispose()
    assert _sql(db_url, SUMMARY_SQL) == kept
    assert _sql(db_url, "SELECT name, first_nonfinite_step FROM runs ORDER BY name") == firsts


def test_change_stamp_moves_only_when_the_runs_do(db_url):
    with tracer.record("first", db=db_url) as run:
        list(train(2, run))
    with tracer.connect(db_url) as store:
        stamp = store.change_stamp()
        assert store.change_stamp() == stamp
        # written in this thread, so each step is in the database when log() returns
        live = tracer.record("second", db=db_url, background=False)
        try:
            assert store.change_stamp() != stamp  # a new run
            stamp = store.change_stamp()
            list(train(1, live))
            assert store.change_stamp() != stamp  # a step written
            stamp = store.change_stamp()
        finally:
            live.close()
        assert store.change_stamp() != stamp  # ended
        stamp = store.change_stamp()
        store.delete_run("first")
        assert store.change_stamp() != stamp  # deleted
        assert np.array_equal(store.runs()["name"].to_numpy(dtype=object), ["second"])


def test_change_stamp_sees_a_writer_die_without_a_write(db_url, monkeypatch):
    """A killed recorder writes nothing; its run turns crashed, so the list changes."""
    live = tracer.record("live", db=db_url)
    try:
        with tracer.connect(db_url, readonly=True) as store:
            monkeypatch.setattr(runfacts, "is_alive", lambda pid, started: True)
            alive = store.change_stamp()
            assert store.runs()["status"].tolist() == ["running"]
            monkeypatch.setattr(runfacts, "is_alive", lambda pid, started: False)
            assert store.change_stamp() != alive
            assert store.runs()["status"].tolist() == ["crashed"]
    finally:
        monkeypatch.undo()
        live.close()
