"""One recorded run, read as DataFrames. Made by ``Store.run(...)``.

    run = tracer.connect("runs.db").run("moons")
    run.metrics()            # index step; loss, acc, lr, ..., wall_time
    run.updates(params=["layers.0.neurons.0.w.0"], steps=range(0, 100))
    run.gradients()          # index step; one column per parameter name
    run.nodes(10)            # every node of step 10: op, parents, value, grad
    run.first_nonfinite()    # where the first NaN/inf came from (an Origin), or None
    run.onset()              # when it started going wrong (an Onset), or None
    run.health()             # every neuron: dead, saturated or ok, and since when

The frames (``str`` is pandas' string dtype; ``Int64`` is nullable):

=================  ===========================================================
``metrics()``      index ``step`` (int64); one float64 column per metric name,
                   sorted, then ``wall_time`` (float64, seconds since the epoch)
``steps()``        index ``step``; ``wall_time`` float64, ``graph_key`` Int64,
                   ``first_nonfinite`` Int64 (node index), ``traced`` bool
``parameters()``   ``idx`` int64, ``name`` str, ``group`` str (layer 0, ...),
                   ``layer``/``neuron`` Int64, ``kind`` str (weight | bias |
                   other), ``input`` Int64 (a weight's input): stored at watch()
``updates()``      ``step`` int64, ``param`` int64, ``name`` str, ``value_before``,
                   ``grad``, ``value_after``, ``lr`` float64; sorted by step, param
``gradients()``    index ``step`` (int64), one float64 column per parameter name
``values()``       the same, the parameter's value when the step was logged
``graph(step)``    ``node`` int64, ``op`` str ('' for a leaf), ``label`` str,
                   ``parents`` tuple of node indices, ``a``/``b`` Int64 (operands),
                   ``arg`` float64 (exponent of ``**``), ``param`` Int64
``nodes(step)``    the graph columns plus ``value`` and ``grad`` float64
=================  ===========================================================

``steps`` arguments are step numbers (not positions): an int, a ``range`` or
``slice`` (stop excluded, any positive stride), or any list/tuple/array of ints.
``params`` are parameter indices and/or names.

Bulk reads hold off the cyclic garbage collector while they build their rows and
frames (``gc_paused``): rows make no cycles, and a collection there would walk
every freshly built object, making a read grow faster than what it returns.

Every float comes back with the bits it was recorded with, NaN payloads and -0.0
included. Reads touch only what they ask for: one weight's history is a range read
on the updates primary key, one step's nodes is one row of ``traces`` plus the
graph shape, which is read once per RunView and cached; ``gradients()`` and
``values()`` read a table each, a row per step asked for (``tracer.paramview``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.errors import RunNotFound
from gradtrace.tracer.read.frames import gc_paused
from gradtrace.tracer.read.graphreads import GraphReads
from gradtrace.tracer.read.paramview import ParamReads
from gradtrace.tracer.read.runfacts import as_utc, effective_status, last_metric_values
from gradtrace.tracer.read.selection import as_int, columns, f8, i8
from gradtrace.tracer.storage.codec import unpack_raw
from gradtrace.tracer.storage.db import describe, tolerant
from gradtrace.tracer.storage.models import Metric, Run, Step
from gradtrace.tracer.validate import safe_text

if TYPE_CHECKING:
    from gradtrace.tracer.analysis.origintypes import Origin
    from gradtrace.tracer.read.store import Store


def _metric_names(run_key: int) -> sa.Select:
    """A run's metric names, one index seek each (not a scan of every row)."""
    first = sa.select(sa.func.min(Metric.name).label("name")).where(Metric.run_key == run_key)
    names = first.cte("metric_names", recursive=True)
    following = (
        sa.select(sa.func.min(Metric.name))
        .where(Metric.run_key == run_key, Metric.name > names.c.name)
        .scalar_subquery()
    )
    names = names.union_all(sa.select(following).where(names.c.name.is_not(None)))
    return sa.select(names.c.name).where(names.c.name.is_not(None))


def _metric_series(run_key: int, name: str, after: int, exact: bool = False) -> sa.Select:
    """One metric's (step, value) rows; ``exact``: only the (step, raw) rows that
    keep exact bits (NaN, -0.0), a few rows SQL finds without handing over the rest."""
    cond = [Metric.run_key == run_key, Metric.name == name, Metric.step > after]
    if exact:
        return sa.select(Metric.step, Metric.raw).where(*cond, Metric.raw.is_not(None))
    return sa.select(Metric.step, Metric.value).where(*cond).order_by(Metric.step)


def _series(rows: list[tuple], exact: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric's (step, value) rows; NULL reads as NaN and
    the (step, raw) rows in ``exact`` put back the bits SQL could not hold."""
    steps, values = zip(*rows, strict=True)
    steps, floats = i8(steps), {"value": f8(values)}
    if exact:
        at, raws = zip(*exact, strict=True)
        odd = np.searchsorted(steps, i8(at))
        floats["value"][odd] = unpack_raw(raws, 1)[:, 0]
    return steps, floats["value"]


def _within(index: np.ndarray, steps: np.ndarray) -> bool:
    """Whether every one of the sorted ``steps`` is in the sorted ``index``."""
    if len(steps) == len(index):
        return bool(np.array_equal(steps, index))
    pos = np.searchsorted(index, steps)
    return bool((pos < len(index)).all() and np.array_equal(index[pos], steps))


class RunView(ParamReads, GraphReads):
    """A recorded run; every method returns a fresh DataFrame or plain values."""

    def __init__(self, store: Store, key: int):
        self.store = store
        self.key = key
        # The graph shapes read last, newest at the end: a run whose shape changes
        # every step must not keep every shape it was asked for (a dashboard's
        # reader lives as long as the server).
        self._graphs: OrderedDict[int, pd.DataFrame] = OrderedDict()
        # Set by Store.run when a name picked the newest of several runs.
        self.note: str | None = None
        self.refresh()

    def select_rows(self, stmt: sa.Select) -> list[tuple]:
        """The rows of a SELECT over this run's tables (what the analyses build on)."""
        return self.store.fetch(stmt)[1]

    def select_max(self, stmt: sa.Select) -> int | None:
        """The single value of a ``SELECT max(...)`` as an int, None for no rows."""
        value = self.select_rows(stmt)[0][0]
        return None if value is None else int(value)

    def _still_there(self) -> None:
        """Raise RunNotFound if the run was deleted since this view was made: an
        empty frame would read as a run that logged nothing."""
        if not self.select_rows(sa.select(Run.run_key).where(Run.run_key == self.key)):
            raise RunNotFound(
                f"run {self.name!r} ({self.id[:8]}) was deleted from {describe(self.store.url)}; "
                "`gradtrace runs` lists the runs there"
            )

    def refresh(self) -> RunView:
        """Re-read the run's row (status, step count) — for a run still recording."""
        with self.store.engine.connect() as conn:
            stmt = sa.select(Run.__table__).where(Run.run_key == self.key)
            row = tolerant(conn, lambda: conn.execute(stmt).first())
        if row is None:
            raise RunNotFound(f"run {self.key} was deleted")
        # Text written before it was validated (a lone surrogate) is made printable.
        self.info: dict[str, Any] = {k: safe_text(v) for k, v in row._mapping.items()}
        return self

    # -- identity ------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def status(self) -> str:
        i = self.info
        return effective_status(
            i["status"], i["host"], i["pid"], i["pid_started"], i["heartbeat_at"], None, i["pid_ns"]
        )

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.info["config"] or {})

    @property
    def model_spec(self) -> dict[str, Any] | None:
        return self.info["model"]

    def summary(self) -> dict[str, Any]:
        """The header facts: name, status, times, config, seed, sizes."""
        i = self.info
        started, ended = as_utc(i["started_at"]), as_utc(i["ended_at"])
        last = ended or as_utc(i["heartbeat_at"]) or started
        return {
            "id": i["id"],
            "name": i["name"],
            "experiment": i["experiment"],
            "status": self.status,
            "started_at": started,
            "ended_at": ended,
            "duration_s": (last - started).total_seconds(),
            "steps": i["steps"],
            "last_step": self.last_step(),
            "config": self.config,
            "seed": i["seed"],
            "tags": i["tags"],
            "notes": i["notes"],
            "model": i["model"],
            "capture": i["capture"],
            "host": i["host"],
            "pid": i["pid"],
            "version": i["version"],
            "error": i["error"],
            "parameters": len(self._parameters),
            "nodes_per_step": self.nodes_per_step(),
        }

    def __repr__(self) -> str:
        return f"<Run {self.name!r} {self.id[:8]} {self.status}, {self.info['steps']} steps>"

    # -- steps and metrics ----------------------------------------------------
    def last_step(self) -> int | None:
        """The last logged step number, or None before the first."""
        return self.select_max(sa.select(sa.func.max(Step.step)).where(Step.run_key == self.key))

    @gc_paused()
    def steps(self, since: int | None = None) -> pd.DataFrame:
        """One row per logged step: wall_time, graph_key, first_nonfinite node, traced."""
        cond = Step.run_key == self.key
        if since is not None:
            cond = sa.and_(cond, Step.step > as_int(since, "since"))
        c = columns(
            *self.store.fetch(
                sa.select(Step.step, Step.wall_time, Step.graph_key, Step.first_nonfinite)
                .where(cond)
                .order_by(Step.step)
            )
        )
        graph_key = pd.array(list(c["graph_key"]), dtype="Int64")
        return pd.DataFrame(
            {
                "wall_time": f8(c["wall_time"]),
                "graph_key": graph_key,
                "first_nonfinite": pd.array(list(c["first_nonfinite"]), dtype="Int64"),
                "traced": ~np.asarray(graph_key.isna(), dtype=bool),
            },
            index=pd.Index(i8(c["step"]), name="step"),
        )

    @gc_paused()
    def metrics(self, since: int | None = None) -> pd.DataFrame:
        """Index ``step``; one float64 column per metric (sorted by name), then
        ``wall_time``. ``since=k`` reads only steps after k (how a live view grows)."""
        after = -1 if since is None else as_int(since, "since")
        self._still_there()
        # One snapshot: a step committed between two reads would otherwise show
        # up with every metric NaN. Each metric is one range of the primary key
        # (run, name, step), so no row carries its name back to Python.
        with self.store.snapshot() as fetch:
            names = [n for (n,) in fetch(_metric_names(self.key))[1]]
            _, step_rows = fetch(
                sa.select(Step.step, Step.wall_time)
                .where(Step.run_key == self.key, Step.step > after)
                .order_by(Step.step)
            )
            # The exact bits are read apart: few rows hold any, and a column of
            # NULLs on every row costs the driver about a third more.
            series = [
                (
                    fetch(_metric_series(self.key, n, after))[1],
                    fetch(_metric_series(self.key, n, after, exact=True))[1],
                )
                for n in names
            ]
        kept = [(n, rows) for n, rows in zip(names, series, strict=True) if rows[0]]
        step_col, wall = zip(*step_rows, strict=True) if step_rows else ((), ())
        index = i8(step_col)
        columns = [_series(*rows) for _, rows in kept]
        stray = [s for s, _ in columns if not _within(index, s)]
        if stray:  # metric rows without a steps row (not written by gradtrace)
            index = np.union1d(index, np.concatenate(stray))
        matrix = np.full((len(index), len(kept)), np.nan)
        for j, (s, values) in enumerate(columns):
            if len(s) == len(index):  # every step has it: the common case
                matrix[:, j] = values
            else:
                matrix[np.searchsorted(index, s), j] = values
        out = pd.DataFrame(matrix, index=pd.Index(index, name="step"), columns=[n for n, _ in kept])
        if "wall_time" not in out:
            wall_time = f8(wall)
            if stray:
                full = np.full(len(index), np.nan)
                full[np.searchsorted(index, i8(step_col))] = wall_time
                wall_time = full
            out["wall_time"] = wall_time
        return out

    def last_metrics(self) -> pd.DataFrame:
        """Index metric name; ``step`` and ``value`` at the metric's last logged step."""
        df = last_metric_values(self.store, [self.key])
        return df.drop(columns="run_key").set_index("name")

    def first_nonfinite(self) -> Origin | None:
        """Where the run's first NaN/inf came from, or None if every number is finite.

        An :class:`~gradtrace.tracer.analysis.origintypes.Origin`: ``step``, ``kind`` (forward,
        backward, update or metric), ``node``, ``op``, ``name``, ``value``, ``grad``,
        ``parents``, ``exact`` and ``story``, the same answer in words. The
        definition is in ``tracer/analysis/forensics.py``.
        """
        from gradtrace.tracer.analysis.origins import find_origin

        return find_origin(self)

    def onset(self, factor: float = 10.0, until: int | None = None):
        """When the run started going wrong (an ``Onset``), or None: the first step
        where the loss or a layer's gradient norm grew past ``factor`` times its
        largest earlier value, or an update outgrew its layer's weights.

            >>> run.onset().story                  # doctest: +SKIP

        The definition is in ``tracer/analysis/onset.py``."""
        from gradtrace.tracer.analysis.onset import onset

        return onset(self, factor, until)

    def health(self) -> pd.DataFrame:
        """Every neuron at the last traced step, ``state`` dead, saturated or ok, and
        ``since`` when (``tracer/analysis/health.py``, ``neurons``).

            >>> run.health().query("state == 'dead'")  # doctest: +SKIP
        """
        from gradtrace.tracer.analysis.health import neurons

        return neurons(self)

    def verify(self):
        """Re-compute every traced step and recorded SGD update, bit for bit.

            >>> run.verify().ok                    # doctest: +SKIP
            True

        Returns a :class:`gradtrace.tracer.analysis.verify.VerifyResult`; see that module.
        """
        from gradtrace.tracer.analysis.verify import verify_run

        self._still_there()
        return verify_run(self)

    # -- export --------------------------------------------------------------------
    def export(self, folder: str | Path, fmt: str = "csv") -> list[Path]:
        """Write the run's tables into ``folder`` as CSV or Parquet; returns the files.

        Files: ``run.json`` (the summary), ``metrics``, ``parameters``, ``steps``,
        ``updates``, and for node-traced runs ``graphs`` (every distinct graph shape,
        with its ``graph_key``; parents as columns ``a``/``b``) and ``nodes`` (step,
        node, value, grad). Large tables are written in pieces, never held whole.
        """
        from gradtrace.tracer.read.export import export_run

        return export_run(self, Path(folder), fmt)

    def to_parquet(self, folder: str | Path) -> list[Path]:
        return self.export(folder, "parquet")

    def to_csv(self, folder: str | Path) -> list[Path]:
        return self.export(folder, "csv")
