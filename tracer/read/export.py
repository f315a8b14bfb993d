"""Writing a table to Parquet or CSV piece by piece, so an export never holds a whole
node trace in memory. Used by ``RunView.export``.

    >>> with TableWriter(Path("out/nodes.csv"), "csv") as w:    # doctest: +SKIP
    ...     for step in steps:
    ...         w.write(run.nodes(step)[["node", "value", "grad"]])

Parquet keeps every float bit for bit (a NaN stays a NaN, not a null) and the nullable
``Int64`` columns; CSV writes
floats with ``repr`` (shortest round-trip text, so values read back equal), NaN as an
empty field and infinities as ``inf``/``-inf``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.errors import GradtraceError
from gradtrace.tracer.storage.models import Trace

if TYPE_CHECKING:
    from gradtrace.tracer.read.runview import RunView

FORMATS = ("csv", "parquet")
DEFAULT_FORMAT = "csv"  # works with the base install; Parquet needs gradtrace[parquet]
_FOLDER_NAME_MAX = 60
EXPORT_CHUNK_STEPS = 2000  # updates are exported this many steps at a time


def default_folder(name: str, run_id: str) -> Path:
    """``./<name>-<id prefix>``, with the name made a safe file name: characters other
    than letters, digits, ``.``, ``-`` and ``_`` become ``_``, cut to 60 (a 200-character
    name of 4-byte characters would pass the file system's 255-byte limit)."""
    safe = re.sub(r"[^\w.-]", "_", name, flags=re.ASCII).lstrip(".") or "run"
    return Path(f"{safe[:_FOLDER_NAME_MAX]}-{run_id[:8]}")


def check_format(fmt: str) -> None:
    """Raise a clear error for an unknown format or a missing Parquet engine."""
    if fmt not in FORMATS:
        raise GradtraceError(f"format must be 'parquet' or 'csv', got {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise GradtraceError(
                "Parquet export needs pyarrow: pip install 'gradtrace[parquet]', "
                "or export with --format csv"
            ) from None


class TableWriter:
    """Appends DataFrames with the same columns to one Parquet or CSV file."""

    def __init__(self, path: Path, fmt: str):
        check_format(fmt)
        self.path, self.fmt = Path(path), fmt
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter
        self._schema: Any = None
        self._started = False

    def write(self, df: pd.DataFrame) -> None:
        if self.fmt == "csv":
            df.to_csv(
                self.path, mode="a" if self._started else "w", header=not self._started, index=False
            )
            self._started = True
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        for i, name in enumerate(df.columns):
            if df[name].dtype == np.float64:
                # from_pandas turns NaN into null; a NaN is a value here, kept bit for bit.
                values = pa.array(df[name].to_numpy(), type=pa.float64())
                table = table.set_column(i, table.schema.field(i), values)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, self._schema)
        else:
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def export_run(view: RunView, out: Path, fmt: str) -> list[Path]:
    """``RunView.export``: the run's tables into folder ``out``; returns the files."""
    check_format(fmt)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    info = out / "run.json"
    info.write_text(json.dumps(view.summary(), default=str, indent=2))
    written.append(info)
    small = {
        "metrics": view.metrics().reset_index(),
        "parameters": view.parameters(),
        "steps": view.steps().reset_index(),
    }
    for name, df in small.items():
        with TableWriter(out / f"{name}.{fmt}", fmt) as w:
            w.write(df)
        written.append(w.path)
    steps = small["steps"]["step"].to_numpy(dtype=np.int64)
    with TableWriter(out / f"updates.{fmt}", fmt) as w:
        for lo in range(0, len(steps), EXPORT_CHUNK_STEPS):
            first, last = steps[lo], steps[min(lo + EXPORT_CHUNK_STEPS, len(steps)) - 1]
            w.write(view.updates(steps=slice(int(first), int(last) + 1)))
        if not len(steps):
            w.write(view.updates(steps=[]))
    written.append(w.path)
    rows = view.select_rows(
        sa.select(Trace.step, Trace.graph_key).where(Trace.run_key == view.key).order_by(Trace.step)
    )
    if rows:
        with TableWriter(out / f"graphs.{fmt}", fmt) as w:
            for key in sorted({int(r[1]) for r in rows}):
                g = view.structure(key).drop(columns="parents")
                g.insert(0, "graph_key", np.full(len(g), key, dtype=np.int64))
                w.write(g)
        written.append(w.path)
        with TableWriter(out / f"nodes.{fmt}", fmt) as w:
            for step, _ in rows:
                n = view.nodes(int(step))[["node", "value", "grad"]]
                n.insert(0, "step", np.full(len(n), int(step), dtype=np.int64))
                w.write(n)
        written.append(w.path)
    return written
