"""The collector policy: full passes held back while a run records, every global
setting put back afterwards, and nothing kept alive from one run to the next."""

from __future__ import annotations

import gc
import time
import tracemalloc

from gradtrace.engine import gcpolicy, linear_gc
from gradtrace.engine.gcpolicy import FULL_SHARE, _on_collect
from helpers.trace import train

from gradtrace import tracer


def _gc_settings() -> tuple:
    return gc.get_threshold(), list(gc.callbacks), gc.get_freeze_count(), gc.isenabled()


def test_policy_holds_full_passes_and_restores():
    before = _gc_settings()
    with linear_gc() as outer:
        assert gc.get_threshold()[2] > 1_000_000  # full passes held back
        assert _on_collect in gc.callbacks
        inner = linear_gc()  # nested: shares the installation
        inner.restore()
        assert _on_collect in gc.callbacks
        gc.collect()  # an explicit full pass is timed and the gate closed again
        assert gc.get_threshold()[2] > 1_000_000
    assert not outer.active
    outer.restore()  # idempotent
    assert _gc_settings() == before
    assert 0 < FULL_SHARE < 1


def test_policy_lets_a_full_pass_through_once_its_budget_allows():
    """Full passes still happen (so cyclic garbage promoted to the oldest
    generation is freed), just not more often than the budget allows.

    Once the gate opens, CPython's own rule starts the pass: objects promoted since
    the last one must exceed a quarter of the heap, so the loop keeps promoting
    until that happens (a process that has run the whole suite holds a big heap),
    with a deadline far past the budget: a policy that never opens fails here.
    """
    with linear_gc():
        t = time.perf_counter()
        gc.collect()
        budget = (time.perf_counter() - t) / FULL_SHARE
        collections = gc.get_stats()[2]["collections"]
        kept = []
        t = time.perf_counter()
        deadline = max(30.0, 20 * budget)
        while gc.get_stats()[2]["collections"] == collections:
            assert time.perf_counter() - t < deadline, "no full pass let through"
            kept.append([[] for _ in range(20_000)])  # a long run's promotions
        assert time.perf_counter() - t >= 0.9 * budget  # ... but not before its budget allowed
        del kept


def test_a_live_graph_is_walked_by_young_passes_only(monkeypatch):
    """While full passes are held back, objects that stay alive through their young
    pass (a step's graph) are not walked again by middle-generation passes."""
    monkeypatch.setattr(gcpolicy, "FULL_SHARE", 1e-9)  # the gate stays shut meanwhile
    monkeypatch.setattr(gcpolicy, "YOUNG", 1000)  # many young passes over a small graph
    with linear_gc():
        gc.collect()  # times a full pass and shuts the gate
        young, middle = (gc.get_stats()[g]["collections"] for g in (0, 1))
        graph = [[] for _ in range(50 * gcpolicy.YOUNG)]
        assert gc.get_stats()[0]["collections"] - young >= 40
        assert gc.get_stats()[1]["collections"] == middle
        del graph


def test_fifty_runs_in_a_row_stay_flat(tmp_path):
    """A notebook recording run after run: memory flat, gc settings as they were.

    Each experiment holds some cyclic data while its run starts and drops it
    afterwards, as notebook cells do; freezing the heap at record() kept every
    such object for the life of the process.
    """
    db = tmp_path / "runs.db"
    before = _gc_settings()

    def experiment(i: int) -> None:
        data = [[j, None] for j in range(20_000)]
        for row in data:
            row[1] = row  # a cycle: only the collector frees it
        with tracer.record(f"nb{i}", db=db) as run:
            assert gc.get_threshold() != before[0]  # the policy is on while recording
            list(train(2, run))
        assert _gc_settings() == before
        del data

    tracemalloc.start()
    try:
        for i in range(10):
            experiment(i)
        gc.collect()
        warm, _ = tracemalloc.get_traced_memory()
        for i in range(10, 50):
            experiment(i)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Each experiment's data is ~2.5 MB; 40 more runs keeping it would add ~100 MB.
    assert after - warm < 2_000_000, f"grew {after - warm} bytes over 40 runs"
    assert gc.get_freeze_count() == 0


def test_reads_build_their_frames_without_collections(tmp_path):
    """No collector pass walks the rows and frames a read is building."""
    db = tmp_path / "runs.db"
    with tracer.record("reads", db=db) as run:
        list(train(150, run))
    starts: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            starts.append(info["generation"])

    with tracer.connect(db, readonly=True) as store:
        view = store.run("reads")
        gc.collect()
        gc.callbacks.append(count)
        try:
            updates = view.updates()
            metrics = view.metrics()
            grads = view.gradients()
            runs = store.runs()
        finally:
            gc.callbacks.remove(count)
    assert len(updates) > 2000 and len(metrics) == 150 and len(grads) == 150 and len(runs) == 1
    # At most one young-generation pass per read, when the collector resumes at its end.
    assert starts.count(0) <= 4 and set(starts) <= {0}, starts
    assert gc.isenabled()
