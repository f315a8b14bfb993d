"""Many steps in one transaction, one statement per table: the writer's bulk form.

    >>> rows = group_rows(run_key, batches, ZSTD)              # doctest: +SKIP
    >>> rows.tables[Update]            # every step's update rows, in step order  # doctest: +SKIP

Why: a recorded step that takes a few milliseconds (a jit replay) leaves the
writer thread little time, and most of what a transaction costs holds the GIL
the training thread needs: SQLAlchemy's begin and commit, each statement's
dispatch, the run's totals. So a group of steps is written as one row list per
table (every step's rows, in step order), each sent in one ``executemany`` (or
``COPY`` on PostgreSQL), and the run's totals are updated once a group. The rows
are the very ones the per-step form wrote, so the stored bits do not change.

Tried and not kept: multi-row ``INSERT ... VALUES (...), (...)`` on SQLite (one
GIL release a statement instead of one a row). A statement that writes several
rows needs a statement journal (foreign keys may abort it): in a temporary file
it cost 2.5x executemany's CPU, in memory the same as executemany; the GIL
hand-offs it saves did not show in the benchmark on a shared machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gradtrace.tracer.storage.codec import PLAIN, checksum, encode_array, encode_pair, row
from gradtrace.tracer.storage.models import Metric, ParamGrads, ParamValues, Step, Trace, Update

if TYPE_CHECKING:
    from gradtrace.tracer.recording.writer import StepBatch

ORDER = (Step, ParamValues, ParamGrads, Metric, Update, Trace)  # the per-step form's order


@dataclass
class GroupRows:
    """The rows of a group of steps, table by table, and what the run's totals need."""

    tables: dict[type, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {model: [] for model in ORDER}
    )
    metrics: list[tuple[Any, ...]] = field(default_factory=list)  # for the run_metrics upsert
    steps: int = 0
    nonfinite_step: int | None = None  # the group's first, as step-by-step coalescing keeps


def group_rows(run_key: int, batches: list[StepBatch], codec: int) -> GroupRows:
    """The rows the per-step form wrote for each of ``batches``, gathered by table.

    The graphs of new shapes must be stored (``shape.key`` set) before this is called.
    """
    out = GroupRows()
    t = out.tables
    for batch in batches:
        snap = batch.snapshot
        graph_key = snap.shape.key if snap is not None else None
        t[Step].append(
            row(
                Step,
                run_key=run_key,
                step=batch.step,
                wall_time=batch.wall_time,
                graph_key=graph_key,
                first_nonfinite=snap.first_nonfinite if snap else None,
            )
        )
        if batch.params is not None:
            for model, array, column in (
                (ParamValues, batch.params[0], "data"),
                (ParamGrads, batch.params[1], "grad"),
            ):
                c, blob = encode_array(array, codec)
                crc = checksum(blob) if c == PLAIN else None  # a zstd frame has its own
                fields = {"codec": c, "crc": crc, column: blob}
                t[model].append(row(model, run_key=run_key, step=batch.step, **fields))
        t[Metric] += batch.metrics
        t[Update] += batch.updates
        if snap is not None:
            c, data, grad = encode_pair(snap.data, snap.grad, codec)
            crc = checksum(data, grad) if c == PLAIN else None  # zstd: its own
            fields = {"data": data, "grad": grad, "codec": c, "crc": crc}
            fields.update(run_key=run_key, step=batch.step, graph_key=graph_key)
            t[Trace].append(row(Trace, **fields))
        out.metrics += batch.metrics
        out.steps += 1
        if out.nonfinite_step is None:
            out.nonfinite_step = batch.nonfinite_step
    return out
