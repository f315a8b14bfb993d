"""What recording costs: micrograd's moons demo untraced vs fully traced, and the peers.

    python benchmarks/recorder.py              # 50 steps, ~2 minutes
    python benchmarks/recorder.py --steps 20 --mlflow-steps 3

Prints one table:
- the overhead ratio of a fully traced step (every node's value and grad,
  every parameter update, the metrics) over the same step untraced, the two
  alternating step by step in one process from the same initial weights;
- gradtrace's events/s while recording (node values + grads, update rows, metrics);
- bytes on disk per node-step: the node trace alone (SQLite's dbstat) and the
  whole file;
- the physical limit: raw ``sqlite3.executemany`` of the same node events as
  (step, node, value, grad) rows, one transaction per step;
- the peer: the same parameter-update and metric stream through MLflow's
  ``log_batch`` into its own SQLite file (needs the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gradtrace.engine import MLP, make_moons
from gradtrace.tracer import record
from gradtrace.tracer.demo import moons_loss

TARGET_OVERHEAD = 1.15
TARGET_BYTES = 17.0
TARGET_VS_MLFLOW = 100.0


def sgd_step(model: MLP, k: int, steps: int) -> None:
    lr = 1.0 - 0.9 * k / steps  # micrograd's demo schedule, applied by hand
    for p in model.parameters():
        p.data -= lr * p.grad


def overhead(steps: int, folder: Path, background: bool) -> dict[str, float]:
    X, y = make_moons(100, noise=0.1, seed=1)
    plain, traced = MLP(2, [16, 16, 1], seed=1337), MLP(2, [16, 16, 1], seed=1337)
    db = folder / f"moons-{'bg' if background else 'sync'}.db"
    t_plain, t_traced, t_log = [], [], []
    nodes = 0
    with record("bench", db=str(db), background=background) as run:
        run.watch(traced)
        for k in range(steps):
            t0 = time.perf_counter()
            loss, _ = moons_loss(plain, X, y)
            plain.zero_grad()
            loss.backward()
            sgd_step(plain, k, steps)
            t1 = time.perf_counter()
            loss2, acc = moons_loss(traced, X, y)
            traced.zero_grad()
            loss2.backward()
            t2 = time.perf_counter()
            run.log(loss2, acc=acc, lr=1.0 - 0.9 * k / steps)
            t3 = time.perf_counter()
            sgd_step(traced, k, steps)
            t4 = time.perf_counter()
            if loss.data != loss2.data:
                sys.exit(f"step {k}: traced loss {loss2.data!r} != untraced {loss.data!r}")
            nodes = len(loss2.topo())
            t_plain.append(t1 - t0)
            t_traced.append(t4 - t1)
            t_log.append(t3 - t2)
        t_close = time.perf_counter()
    t_close = time.perf_counter() - t_close
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        trace_bytes = table_bytes(conn, "traces")
    size = db.stat().st_size
    params = len(traced.parameters())
    events = 2 * nodes + params + 3  # node values+grads, update rows, metrics
    log_s = statistics.median(t_log)
    return {
        "plain": statistics.median(t_plain),
        "traced": statistics.median(t_traced),
        "log": log_s,
        "close": t_close,
        "nodes": nodes,
        "params": params,
        "events_per_s": events / log_s,
        "bytes_per_node_step": size / (nodes * steps),
        "trace_bytes_per_node_step": trace_bytes / (nodes * steps) if trace_bytes else None,
        "size": size,
    }


def table_bytes(conn: sqlite3.Connection, table: str) -> int | None:
    """Pages a table and its indexes occupy (SQLite's dbstat), or None if not compiled in."""
    try:
        return conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = ? OR name LIKE ?",
            (table, f"sqlite_autoindex_{table}_%"),
        ).fetchone()[0]
    except sqlite3.OperationalError:
        return None


def raw_sqlite(nodes: int, steps: int, folder: Path) -> float:
    """Rows/s of plain executemany: (step, node, value, grad), one commit per step."""
    path = folder / "raw.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (step INTEGER, node INTEGER, value REAL, grad REAL)")
    rows_per_step = [(0, i, i * 0.5, -i * 0.25) for i in range(nodes)]
    t0 = time.perf_counter()
    for k in range(steps):
        rows = [(k, i, v, g) for _, i, v, g in rows_per_step]
        with conn:
            conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - t0
    conn.close()
    return nodes * steps * 2 / elapsed  # two events (value, grad) per row


def mlflow_events_per_s(params: int, steps: int, folder: Path) -> float | None:
    """Events/s of MLflow's log_batch for the update + metric stream of a step."""
    try:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.create_experiment("bench", artifact_location=str(folder / "mlruns"))
    run_id = client.create_run(exp).info.run_id
    names = [f"p{i}.{kind}" for i in range(params) for kind in ("before", "grad", "after")]
    names += ["loss", "acc", "lr"]
    t0 = time.perf_counter()
    for k in range(steps):
        ts = int(time.time() * 1000)
        metrics = [Metric(n, 0.5 * i + k, ts, k) for i, n in enumerate(names)]
        for j in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[j : j + 1000])
    elapsed = time.perf_counter() - t0
    client.set_terminated(run_id)
    return len(names) * steps / elapsed


def fmt_bytes(x: float | None) -> str:
    return "n/a (no dbstat)" if x is None else f"{x:.2f}"


def verdict(x: float | None) -> str:
    return "n/a" if x is None else ("PASS" if x <= TARGET_BYTES else "MISS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--mlflow-steps", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sync = overhead(args.steps, folder, background=False)
        bg = overhead(args.steps, folder, background=True)
        raw = raw_sqlite(sync["nodes"], min(args.steps, 20), folder)
        mlflow = mlflow_events_per_s(sync["params"], args.mlflow_steps, folder)
    best = min((sync, bg), key=lambda r: r["traced"] / r["plain"])
    ratio = best["traced"] / best["plain"]
    rows = [
        ("nodes per step", f"{sync['nodes']:,}", ""),
        ("untraced step (median)", f"{best['plain'] * 1e3:.1f} ms", ""),
        (
            "traced step, sync writer",
            f"{sync['traced'] * 1e3:.1f} ms",
            f"{sync['traced'] / sync['plain']:.3f}x",
        ),
        (
            "traced step, background writer",
            f"{bg['traced'] * 1e3:.1f} ms",
            f"{bg['traced'] / bg['plain']:.3f}x",
        ),
        (
            "overhead ratio (best)",
            f"{ratio:.3f}x",
            f"target <= {TARGET_OVERHEAD}x: {'PASS' if ratio <= TARGET_OVERHEAD else 'MISS'}",
        ),
        ("run.log() time (median, sync)", f"{sync['log'] * 1e3:.1f} ms", ""),
        ("gradtrace events/s (sync)", f"{sync['events_per_s']:,.0f}", ""),
        (
            "node trace bytes per node-step",
            fmt_bytes(sync["trace_bytes_per_node_step"]),
            f"target <= {TARGET_BYTES}: {verdict(sync['trace_bytes_per_node_step'])}",
        ),
        (
            "whole file bytes per node-step",
            f"{sync['bytes_per_node_step']:.2f}",
            "incl. the graph shape (once), updates, metrics, indexes",
        ),
        (
            "raw sqlite3.executemany events/s",
            f"{raw:,.0f}",
            f"gradtrace = {sync['events_per_s'] / raw:.2f}x of it",
        ),
    ]
    if mlflow is None:
        rows.append(("MLflow log_batch events/s", "not installed", "pip install '.[bench]'"))
    else:
        vs = sync["events_per_s"] / mlflow
        rows.append(
            (
                "MLflow log_batch events/s",
                f"{mlflow:,.0f}",
                f"gradtrace = {vs:,.0f}x; target >= {TARGET_VS_MLFLOW:.0f}x: "
                f"{'PASS' if vs >= TARGET_VS_MLFLOW else 'MISS'}",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(
        f"recorder benchmark: moons demo, {args.steps} steps, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores"
    )
    print(f"| {'measure'.ljust(width)} | value | note |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value} | {note} |")


if __name__ == "__main__":
    main()
