"""Many steps in one transaction, one statement per table: the writer's bulk form.

    >>> sql = multirow_sql("INSERT INTO t (a, b) VALUES (?, ?)", 3)
    >>> sql
    'INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)'

Why: a recorded step that takes a few milliseconds (a jit replay) leaves the
writer thread little time, and every statement of it holds the GIL the training
thread needs: SQLAlchemy's dispatch, the per-row binding and, for each row of an
``executemany``, one GIL release around ``sqlite3_step`` and one re-acquisition,
which waits for the training thread to let go. So a group of steps is written
as one row list per table (every step's rows, in step order), each sent to
SQLite as a few multi-row ``INSERT ... VALUES (...), (...)`` statements (one
``sqlite3_step`` a statement) and to PostgreSQL by ``COPY`` or ``executemany``;
the run's totals are updated once a group. The rows are the very ones the
per-step form wrote, so the stored bits do not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

from gradtrace.tracer.storage.codec import PLAIN, checksum, encode_array, encode_pair, row
from gradtrace.tracer.storage.models import Metric, ParamGrads, ParamValues, Step, Trace, Update

if TYPE_CHECKING:
    from gradtrace.tracer.recording.writer import StepBatch

MAX_ROWS = 256  # rows per multi-row statement (each size is compiled once and cached)
ORDER = (Step, ParamValues, ParamGrads, Metric, Update, Trace)  # the per-step form's order


def multirow_sql(single: str, n: int) -> str:
    """``single`` (an ``INSERT ... VALUES (?, ...)`` compiled from a model) for ``n`` rows."""
    head, values = re.fullmatch(r"(.* VALUES )(\(.*\))", single, re.S).groups()
    return head + ", ".join([values] * n)


def chunk_sizes(n: int, most: int = MAX_ROWS) -> list[int]:
    """``n`` rows as statements of ``most`` rows, then powers of two: few distinct
    statements (SQLite's statement cache keeps them compiled), few per call.

        >>> chunk_sizes(337)
        [256, 64, 16, 1]
    """
    sizes = [most] * (n // most)
    rest = n % most
    bit = 1 << rest.bit_length()
    while rest:
        bit >>= 1
        if rest & bit:
            sizes.append(bit)
            rest -= bit
    return sizes


def flat(rows: list[tuple[Any, ...]]) -> list[Any]:
    """Every row's fields in one list, in order (the multi-row statement's parameters)."""
    return list(chain.from_iterable(rows))


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
