"""What a full node trace costs on disk (SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from gradtrace.tracer.recording.demo import train

from gradtrace import tracer

# Bytes per node-step a traced step adds: 16 before compression (value and gradient
# as float64); zstd keeps it under 5 on the moons demo (gradients are mostly exact
# zeros, values repeat). Lossless: it cannot drop far below ~2 (30,000 distinct values).
LIMIT = 5.0


def _recorded_size(path: Path, steps: int) -> tuple[int, int]:
    """File size of a moons run of ``steps`` steps after a WAL checkpoint, and its nodes."""
    run_id = train("moons", steps=steps, db=path, seed=1337)
    with sqlite3.connect(path) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    assert busy == 0
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    with tracer.connect(path, readonly=True) as store:
        view = store.run(run_id)
        assert view.traced_steps() == list(range(steps))
        nodes = view.nodes_per_step()
    return path.stat().st_size, nodes


@pytest.mark.slow
def test_node_trace_bytes_per_node_step(tmp_path):
    """The growth from a 3-step to a 30-step moons run, per node-step: the fixed costs
    (schema, graph, run row) cancel, what is left is what each traced step adds."""
    short, nodes = _recorded_size(tmp_path / "short.db", 3)
    full, nodes_full = _recorded_size(tmp_path / "full.db", 30)
    assert nodes == nodes_full > 60_000
    per_node_step = (full - short) / ((30 - 3) * nodes)
    assert 1.0 <= per_node_step <= LIMIT, (
        f"a node trace costs {per_node_step:.3f} bytes per node-step "
        f"({full - short} bytes for {30 - 3} steps x {nodes} nodes); the budget is {LIMIT}"
    )
    print(f"measured {per_node_step:.3f} bytes per node-step (limit {LIMIT})")
