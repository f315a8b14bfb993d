"""One recorded run, read as DataFrames. Made by ``Store.run(...)``.

    >>> run = tracer.connect("runs.db").run("moons")     # doctest: +SKIP
    >>> run.metrics()            # index step; loss, acc, lr, ..., wall_time
    >>> run.updates(params=["layers.0.neurons.0.w.0"], steps=range(0, 100))
    >>> run.gradients()          # index step; one column per parameter name
    >>> run.nodes(10)            # every node of step 10: op, parents, value, grad
    >>> run.first_nonfinite()    # where the first NaN/inf came from (an Origin), or None

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
graph shape, which is read once per RunView and cached.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from functools import cached_property
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.codec import (
    apply_raw,
    decode_floats,
    decode_int32,
    decode_kinds,
    decode_matrix,
)
from gradtrace.tracer.errors import GradtraceError, RunNotFound
from gradtrace.tracer.frames import (
    STR,
    as_utc,
    effective_status,
    gc_paused,
    last_metric_values,
    parents_array,
    str_series,
)
from gradtrace.tracer.models import Graph, Metric, Parameter, Run, Step, Trace, Update
from gradtrace.tracer.validate import safe_text

if TYPE_CHECKING:
    from gradtrace.tracer.forensics import Origin
    from gradtrace.tracer.store import Store

Steps = int | range | slice | Sequence[int] | np.ndarray | None
Params = int | str | Sequence[int | str] | None

UPDATE_FLOATS = ["value_before", "grad", "value_after", "lr"]
MAX_IN = 500  # longer step lists are read as one range and filtered in memory
EXPORT_CHUNK_STEPS = 2000  # updates are exported this many steps at a time


def _int(x: Any, what: str) -> int:
    if isinstance(x, bool | np.bool_) or not isinstance(x, Integral):
        raise TypeError(f"{what} must be an int, got {type(x).__name__} {x!r}")
    return int(x)


def _step_filter(column: sa.ColumnElement, steps: Steps) -> tuple[sa.ColumnElement, set | None]:
    """(SQL condition for ``steps``, exact set of steps to keep afterwards or None)."""
    if steps is None:
        return sa.true(), None
    if isinstance(steps, str | bytes | bool | np.bool_ | float):
        raise TypeError(f"steps must be an int, a range, a slice or a list of ints, got {steps!r}")
    if isinstance(steps, Integral):
        return column == int(steps), None
    if isinstance(steps, slice):
        stride = 1 if steps.step is None else _int(steps.step, "a slice's step")
        lo = None if steps.start is None else _int(steps.start, "a slice's start")
        hi = None if steps.stop is None else _int(steps.stop, "a slice's stop")
        return _interval(column, lo, hi, stride), None
    if isinstance(steps, range):
        if not steps:
            return sa.false(), None
        up = steps if steps.step > 0 else steps[::-1]
        return _interval(column, up.start, up[-1] + 1, up.step), None
    try:
        wanted = sorted({_int(s, "a step") for s in steps})
    except TypeError as e:
        raise TypeError(f"{e}; steps must be an int, a range, a slice or a list of ints") from None
    if not wanted:
        return sa.false(), None
    if len(wanted) <= MAX_IN:
        return column.in_(wanted), None
    return sa.and_(column >= wanted[0], column <= wanted[-1]), set(wanted)


def _interval(
    column: sa.ColumnElement, lo: int | None, hi: int | None, stride: int
) -> sa.ColumnElement:
    if stride < 1:
        raise ValueError(f"a step slice needs a positive stride, got {stride}")
    cond: list[sa.ColumnElement] = []
    if lo is not None:
        cond.append(column >= lo)
    if hi is not None:
        cond.append(column < hi)
    if stride > 1:
        cond.append((column - (lo or 0)) % stride == 0)
    return sa.and_(sa.true(), *cond)


def _keep(steps: np.ndarray, keep: set | None) -> np.ndarray | None:
    """Row mask for the exact step set of a long step list (None: keep all)."""
    if keep is None:
        return None
    return np.isin(steps, np.fromiter(keep, dtype=np.int64, count=len(keep)))


def _columns(keys: list[str], rows: list[tuple]) -> dict[str, tuple]:
    if not rows:
        return {k: () for k in keys}
    return dict(zip(keys, zip(*rows, strict=True), strict=True))


def _f8(values: tuple | list) -> np.ndarray:
    return np.array(values, dtype=np.float64) if len(values) else np.empty(0, np.float64)


def _i8(values: tuple | list) -> np.ndarray:
    return np.array(values, dtype=np.int64) if len(values) else np.empty(0, np.int64)


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


def _metric_series(run_key: int, name: str, after: int) -> sa.Select:
    return (
        sa.select(Metric.step, Metric.value, Metric.raw)
        .where(Metric.run_key == run_key, Metric.name == name, Metric.step > after)
        .order_by(Metric.step)
    )


def _series(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric's (step, value, raw) rows; NULL reads as NaN
    and the exact bits in ``raw`` win where present."""
    steps, values, raws = zip(*rows, strict=True)
    floats = {"value": _f8(values)}
    if raws.count(None) != len(raws):
        apply_raw(floats, raws)
    return _i8(steps), floats["value"]


def _within(index: np.ndarray, steps: np.ndarray) -> bool:
    """Whether every one of the sorted ``steps`` is in the sorted ``index``."""
    if len(steps) == len(index):
        return bool(np.array_equal(steps, index))
    pos = np.searchsorted(index, steps)
    return bool((pos < len(index)).all() and np.array_equal(index[pos], steps))


class RunView:
    """A recorded run; every method returns a fresh DataFrame or plain values."""

    def __init__(self, store: Store, key: int):
        self.store = store
        self.key = key
        self._graphs: dict[int, pd.DataFrame] = {}
        # Set by Store.run when a name picked the newest of several runs.
        self.note: str | None = None
        self.refresh()

    def _rows(self, stmt: sa.Select) -> list[tuple]:
        return self.store.fetch(stmt)[1]

    def _max(self, stmt: sa.Select) -> int | None:
        """The single value of a ``SELECT max(...)`` as an int, None for no rows."""
        value = self._rows(stmt)[0][0]
        return None if value is None else int(value)

    def refresh(self) -> RunView:
        """Re-read the run's row (status, step count) — for a run still recording."""
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(Run.__table__).where(Run.run_key == self.key)).first()
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
        return self._max(sa.select(sa.func.max(Step.step)).where(Step.run_key == self.key))

    @gc_paused()
    def steps(self, since: int | None = None) -> pd.DataFrame:
        """One row per logged step: wall_time, graph_key, first_nonfinite node, traced."""
        cond = Step.run_key == self.key
        if since is not None:
            cond = sa.and_(cond, Step.step > _int(since, "since"))
        c = _columns(
            *self.store.fetch(
                sa.select(Step.step, Step.wall_time, Step.graph_key, Step.first_nonfinite)
                .where(cond)
                .order_by(Step.step)
            )
        )
        graph_key = pd.array(list(c["graph_key"]), dtype="Int64")
        return pd.DataFrame(
            {
                "wall_time": _f8(c["wall_time"]),
                "graph_key": graph_key,
                "first_nonfinite": pd.array(list(c["first_nonfinite"]), dtype="Int64"),
                "traced": ~np.asarray(graph_key.isna(), dtype=bool),
            },
            index=pd.Index(_i8(c["step"]), name="step"),
        )

    @gc_paused()
    def metrics(self, since: int | None = None) -> pd.DataFrame:
        """Index ``step``; one float64 column per metric (sorted by name), then
        ``wall_time``. ``since=k`` reads only steps after k (how a live view grows)."""
        after = -1 if since is None else _int(since, "since")
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
            series = [fetch(_metric_series(self.key, name, after))[1] for name in names]
        kept = [(n, rows) for n, rows in zip(names, series, strict=True) if rows]
        step_col, wall = zip(*step_rows, strict=True) if step_rows else ((), ())
        index = _i8(step_col)
        columns = [_series(rows) for _, rows in kept]
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
            wall_time = _f8(wall)
            if stray:
                full = np.full(len(index), np.nan)
                full[np.searchsorted(index, _i8(step_col))] = wall_time
                wall_time = full
            out["wall_time"] = wall_time
        return out

    def last_metrics(self) -> pd.DataFrame:
        """Index metric name; ``step`` and ``value`` at the metric's last logged step."""
        df = last_metric_values(self.store, [self.key])
        return df.drop(columns="run_key").set_index("name")

    # -- parameters -------------------------------------------------------------
    @cached_property
    def _parameters(self) -> pd.DataFrame:
        c = _columns(
            *self.store.fetch(
                sa.select(
                    Parameter.idx,
                    Parameter.name,
                    Parameter.param_group,
                    Parameter.layer,
                    Parameter.neuron,
                    Parameter.kind,
                    Parameter.input_index,
                )
                .where(Parameter.run_key == self.key)
                .order_by(Parameter.idx)
            )
        )
        return pd.DataFrame(
            {
                "idx": _i8(c["idx"]),
                "name": pd.Series(list(c["name"]), dtype=STR),
                "group": pd.Series(list(c["param_group"]), dtype=STR),
                "layer": pd.array(list(c["layer"]), dtype="Int64"),
                "neuron": pd.array(list(c["neuron"]), dtype="Int64"),
                "kind": pd.Series(list(c["kind"]), dtype=STR),
                "input": pd.array(list(c["input_index"]), dtype="Int64"),
            }
        )

    @cached_property
    def _param_names(self) -> np.ndarray:
        return self._parameters["name"].to_numpy(dtype=object)

    def parameters(self) -> pd.DataFrame:
        """One row per watched parameter: idx, name, layer, neuron, kind (weight/bias)."""
        return self._parameters.copy()

    def param_indices(self, params: Params) -> list[int]:
        """Parameter indices for ints and/or names; a bad one gets a clear error."""
        n = len(self._parameters)
        if params is None:
            return list(range(n))
        if isinstance(params, str | Integral):
            params = [params]
        by_name = {name: i for i, name in enumerate(self._param_names)}
        out = []
        for p in params:
            if isinstance(p, str):
                if p not in by_name:
                    close = difflib.get_close_matches(p, list(by_name), n=3)
                    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                    raise GradtraceError(
                        f"run {self.name!r} has no parameter named {p!r}{hint} "
                        "(run.parameters() lists them)"
                    )
                out.append(by_name[p])
            else:
                i = _int(p, "a parameter")
                if not 0 <= i < n:
                    raise GradtraceError(
                        f"parameter index {i} is out of range: run {self.name!r} has {n} parameters"
                    )
                out.append(i)
        return out

    @gc_paused()
    def updates(self, params: Params = None, steps: Steps = None) -> pd.DataFrame:
        """Long table: step, param, name, value_before, grad, value_after, lr."""
        cond, keep = _step_filter(Update.step, steps)
        where = [Update.run_key == self.key, cond]
        if params is not None:
            where.append(Update.param.in_(sorted(set(self.param_indices(params)))))
        elif steps is not None:
            # Every parameter, a few steps: one index seek per parameter instead of a
            # scan of the run's rows (the primary key leads with the parameter).
            where.append(Update.param.in_(range(len(self._parameters))))
        c = _columns(
            *self.store.fetch(
                sa.select(
                    Update.step,
                    Update.param,
                    *[getattr(Update, col) for col in UPDATE_FLOATS],
                    Update.raw,
                )
                .where(*where)
                .order_by(Update.param, Update.step)
            )
        )
        step, param = _i8(c["step"]), _i8(c["param"])
        floats = {col: _f8(c[col]) for col in UPDATE_FLOATS}
        apply_raw(floats, c["raw"])
        order = np.lexsort((param, step))
        mask = _keep(step, keep)
        if mask is not None:
            order = order[mask[order]]
        return pd.DataFrame(
            {
                "step": step[order],
                "param": param[order],
                "name": pd.Series(self._param_names[param[order]], dtype=STR),
                **{col: values[order] for col, values in floats.items()},
            }
        )

    @gc_paused()
    def param_arrays(self, steps: Steps = None, which: str = "grad") -> pd.DataFrame:
        """Index step, one column per parameter name: ``which`` is "grad" or "data"
        (the value when the step was logged, before its update)."""
        if which not in ("grad", "data"):
            raise ValueError(f"which must be 'grad' or 'data', got {which!r}")
        column = {"grad": Step.param_grad, "data": Step.param_data}[which]
        cond, keep = _step_filter(Step.step, steps)
        rows = self._rows(
            sa.select(Step.step, column.label("blob"), Step.codec)
            .where(Step.run_key == self.key, cond, column.is_not(None))
            .order_by(Step.step)
        )
        names = pd.Index(list(self._param_names))
        n = len(names)
        if keep is not None:
            rows = [r for r in rows if r[0] in keep]
        index = pd.Index(_i8([r[0] for r in rows]), name="step")
        what = f"a parameter array of run {self.name!r}"
        matrix = decode_matrix([r[1] for r in rows], [r[2] for r in rows], n, what)
        return pd.DataFrame(matrix, index=index, columns=names)

    def gradients(self, params: Params = None, steps: Steps = None) -> pd.DataFrame:
        """Index step, one column per parameter name: the gradient at each step."""
        wide = self.param_arrays(steps, "grad")
        return wide if params is None else wide.iloc[:, self.param_indices(params)]

    def values(self, params: Params = None, steps: Steps = None) -> pd.DataFrame:
        """Index step, one column per parameter name: the value at each step, before
        that step's update (the value the step's forward pass used)."""
        wide = self.param_arrays(steps, "data")
        return wide if params is None else wide.iloc[:, self.param_indices(params)]

    # -- nodes -------------------------------------------------------------------
    def traced_steps(self) -> list[int]:
        rows = self._rows(
            sa.select(Trace.step).where(Trace.run_key == self.key).order_by(Trace.step)
        )
        return [int(r[0]) for r in rows]

    def nodes_per_step(self) -> int | None:
        return self._max(sa.select(sa.func.max(Graph.n_nodes)).where(Graph.run_key == self.key))

    def _no_trace(self, step: int) -> GradtraceError:
        traced = self.traced_steps()
        hint = (
            f"traced steps run from {traced[0]} to {traced[-1]} ({len(traced)} of them)"
            if traced
            else "this run recorded no node traces (capture='params')"
        )
        return GradtraceError(f"step {step} of run {self.name!r} has no node trace; {hint}")

    @gc_paused()
    def _structure(self, graph_key: int) -> pd.DataFrame:
        if graph_key not in self._graphs:
            keys, rows = self.store.fetch(
                sa.select(
                    Graph.n_nodes,
                    Graph.ops,
                    Graph.a,
                    Graph.b,
                    Graph.params,
                    Graph.labels,
                    Graph.args,
                    Graph.kinds,
                ).where(Graph.graph_key == graph_key)
            )
            g = dict(zip(keys, rows[0], strict=True))
            n = int(g["n_nodes"])
            a, b, params = decode_int32(g["a"]), decode_int32(g["b"]), decode_int32(g["params"])
            ops = ["" if op == "." else op for op in g["ops"].split(" ")] if n else []
            if not len(a) == len(b) == len(params) == len(ops) == n:
                raise GradtraceError(f"graph {graph_key} of run {self.name!r} is inconsistent")
            labels = np.full(n, "", dtype=object)
            args = np.full(n, np.nan)
            # JSON columns come back as text from SQLite, as objects from psycopg.
            for target, raw in ((labels, g["labels"]), (args, g["args"])):
                mapping = json.loads(raw) if isinstance(raw, str) else (raw or {})
                if mapping:
                    target[np.array(list(map(int, mapping)), dtype=np.int64)] = list(
                        mapping.values()
                    )
            self._graphs[graph_key] = pd.DataFrame(
                {
                    "node": np.arange(n, dtype=np.int64),
                    "op": str_series(ops),
                    "label": str_series(labels),
                    "parents": pd.Series(parents_array(a, b), dtype=object),
                    "a": pd.arrays.IntegerArray(a, a < 0),
                    "b": pd.arrays.IntegerArray(b, b < 0),
                    "arg": args,
                    "param": pd.arrays.IntegerArray(params, params < 0),
                    "kind": str_series(decode_kinds(g["kinds"], ops)),
                }
            )
        return self._graphs[graph_key]

    def graph(self, step: int) -> pd.DataFrame:
        """The structure of step ``step``'s graph: node, op, label, parents, a, b, arg,
        param, kind. Node i's operands are ``parents`` (node indices, always smaller
        than i). ``kind`` says what a leaf stands for: "parameter", "input",
        "constant" or "target" (see ``Value.kind``), "leaf" in graphs recorded before
        gradtrace stored kinds, "" for a computed node."""
        step = _int(step, "step")
        rows = self._rows(
            sa.select(Trace.graph_key).where(Trace.run_key == self.key, Trace.step == step)
        )
        if not rows:
            raise self._no_trace(step)
        return self._structure(int(rows[0][0])).copy()

    def nodes(self, step: int) -> pd.DataFrame:
        """Every node of step ``step``: the graph columns plus value and grad."""
        step = _int(step, "step")
        rows = self._rows(
            sa.select(Trace.graph_key, Trace.data, Trace.grad, Trace.codec).where(
                Trace.run_key == self.key, Trace.step == step
            )
        )
        if not rows:
            raise self._no_trace(step)
        graph_key, data, grad, codec = rows[0]
        out = self._structure(int(graph_key)).copy()
        what = f"the trace of step {step}"
        out["value"] = decode_floats(data, codec, len(out), what)
        out["grad"] = decode_floats(grad, codec, len(out), what)
        return out

    def first_nonfinite(self) -> Origin | None:
        """Where the run's first NaN/inf came from, or None if every number is finite.

        An :class:`~gradtrace.tracer.forensics.Origin`: ``step``, ``kind`` (forward,
        backward, update or metric), ``node``, ``op``, ``name``, ``value``, ``grad``,
        ``parents``, ``exact`` and ``story``, the same answer in words. The
        definition is in ``tracer/forensics.py``.
        """
        from gradtrace.tracer.origins import find_origin

        return find_origin(self)

    def _param_chunks(self, upto: int | None, start: int | None = None):
        """(steps, data, grad) of the per-step parameter arrays, a chunk of steps at a
        time, in step order, from step ``start`` up to step ``upto`` (keyset
        pagination on the key)."""
        n = len(self._parameters)
        after = None if start is None else start - 1
        while True:
            cond = [Step.run_key == self.key, Step.param_data.is_not(None)]
            if after is not None:
                cond.append(Step.step > after)
            if upto is not None:
                cond.append(Step.step <= upto)
            rows = self._rows(
                sa.select(Step.step, Step.param_data, Step.param_grad, Step.codec)
                .where(*cond)
                .order_by(Step.step)
                .limit(EXPORT_CHUNK_STEPS)
            )
            if not rows:
                return
            steps = _i8([r[0] for r in rows])
            codecs = [r[3] for r in rows]
            data = decode_matrix([r[1] for r in rows], codecs, n, "param_data")
            grad = decode_matrix([r[2] for r in rows], codecs, n, "param_grad")
            yield steps, data, grad
            after = int(steps[-1])

    def verify(self):
        """Re-compute every traced step and recorded SGD update, bit for bit.

            >>> run.verify().ok                    # doctest: +SKIP
            True

        Returns a :class:`gradtrace.tracer.verify.VerifyResult`; see that module.
        """
        from gradtrace.tracer.verify import verify_run

        return verify_run(self)

    # -- export --------------------------------------------------------------------
    def export(self, folder: str | Path, fmt: str = "csv") -> list[Path]:
        """Write the run's tables into ``folder`` as CSV or Parquet; returns the files.

        Files: ``run.json`` (the summary), ``metrics``, ``parameters``, ``steps``,
        ``updates``, and for node-traced runs ``graphs`` (every distinct graph shape,
        with its ``graph_key``; parents as columns ``a``/``b``) and ``nodes`` (step,
        node, value, grad). Large tables are written in pieces, never held whole.
        """
        from gradtrace.tracer.export import TableWriter, check_format

        check_format(fmt)
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        info = out / "run.json"
        info.write_text(json.dumps(self.summary(), default=str, indent=2))
        written.append(info)
        small = {
            "metrics": self.metrics().reset_index(),
            "parameters": self.parameters(),
            "steps": self.steps().reset_index(),
        }
        for name, df in small.items():
            with TableWriter(out / f"{name}.{fmt}", fmt) as w:
                w.write(df)
            written.append(w.path)
        steps = small["steps"]["step"].to_numpy(dtype=np.int64)
        with TableWriter(out / f"updates.{fmt}", fmt) as w:
            for lo in range(0, len(steps), EXPORT_CHUNK_STEPS):
                first, last = steps[lo], steps[min(lo + EXPORT_CHUNK_STEPS, len(steps)) - 1]
                w.write(self.updates(steps=slice(int(first), int(last) + 1)))
            if not len(steps):
                w.write(self.updates(steps=[]))
        written.append(w.path)
        rows = self._rows(
            sa.select(Trace.step, Trace.graph_key)
            .where(Trace.run_key == self.key)
            .order_by(Trace.step)
        )
        if rows:
            with TableWriter(out / f"graphs.{fmt}", fmt) as w:
                for key in sorted({int(r[1]) for r in rows}):
                    g = self._structure(key).drop(columns="parents")
                    g.insert(0, "graph_key", np.full(len(g), key, dtype=np.int64))
                    w.write(g)
            written.append(w.path)
            with TableWriter(out / f"nodes.{fmt}", fmt) as w:
                for step, _ in rows:
                    n = self.nodes(int(step))[["node", "value", "grad"]]
                    n.insert(0, "step", np.full(len(n), int(step), dtype=np.int64))
                    w.write(n)
            written.append(w.path)
        return written

    def to_parquet(self, folder: str | Path) -> list[Path]:
        return self.export(folder, "parquet")

    def to_csv(self, folder: str | Path) -> list[Path]:
        return self.export(folder, "csv")
