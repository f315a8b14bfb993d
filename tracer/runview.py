"""One recorded run, read as DataFrames. Made by ``Store.run(...)``.

    >>> run = tracer.connect("runs.db").run("moons")     # doctest: +SKIP
    >>> run.metrics()            # index step; loss, acc, lr, ..., wall_time
    >>> run.updates(params=["layers.0.neurons.0.w.0"], steps=range(0, 100))
    >>> run.gradients()          # index step; one column per parameter name
    >>> run.nodes(10)            # every node of step 10: op, parents, value, grad
    >>> run.first_nonfinite()    # where the first NaN/inf appeared, or None

Reads touch only what they ask for: one weight's history is a range read on
the updates primary key, one step's nodes is one row of ``traces`` plus the
graph shape, which is read once and cached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tracer.errors import GradtraceError, RunNotFound
from tracer.models import Graph, Metric, Parameter, Run, Step, Trace, Update
from tracer.store import apply_raw, as_utc, effective_status

if TYPE_CHECKING:
    from tracer.store import Store

Steps = int | range | slice | tuple[int, int] | Sequence[int] | None
Params = int | str | Sequence[int | str] | None

_NAME = re.compile(r"^layers\.(\d+)\.neurons\.(\d+)\.(w|b)(?:\.(\d+))?$")
_F8 = np.dtype("<f8")
UPDATE_FLOATS = ["value_before", "grad", "value_after", "lr"]


def _step_filter(column: sa.ColumnElement, steps: Steps) -> sa.ColumnElement:
    """A SQL condition for the ``steps`` argument (int, range, slice, (a, b) or list)."""
    if steps is None:
        return sa.true()
    if isinstance(steps, bool):
        raise TypeError("steps must be an int, a range, a (start, stop) pair or a list of ints")
    if isinstance(steps, int):
        return column == steps
    if isinstance(steps, slice):
        if steps.step not in (None, 1):
            steps = range(*steps.indices(2**31))
        else:
            lo, hi = steps.start, steps.stop
            cond = sa.true()
            if lo is not None:
                cond = sa.and_(cond, column >= lo)
            if hi is not None:
                cond = sa.and_(cond, column < hi)
            return cond
    if isinstance(steps, range) and steps.step == 1:
        return sa.and_(column >= steps.start, column < steps.stop)
    if isinstance(steps, tuple) and len(steps) == 2:
        return sa.and_(column >= int(steps[0]), column < int(steps[1]))
    return column.in_([int(s) for s in steps])


class RunView:
    """A recorded run; every method returns a fresh DataFrame or plain values."""

    def __init__(self, store: Store, key: int):
        self.store = store
        self.key = key
        self._graphs: dict[int, pd.DataFrame] = {}
        self.refresh()

    def refresh(self) -> RunView:
        """Re-read the run's row (status, step count) — for a run still recording."""
        df = self.store.read(sa.select(Run.__table__).where(Run.run_key == self.key))
        if df.empty:
            raise RunNotFound(f"run {self.key} was deleted")
        self.info: dict[str, Any] = df.iloc[0].to_dict()
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
            i["status"], i["host"], i["pid"], i["pid_started"], i["heartbeat_at"]
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
            "parameters": len(self.parameters()),
            "nodes_per_step": self.nodes_per_step(),
        }

    def __repr__(self) -> str:
        return f"<Run {self.name!r} {self.id[:8]} {self.status}, {self.info['steps']} steps>"

    # -- steps and metrics ----------------------------------------------------
    def steps(self, since: int | None = None) -> pd.DataFrame:
        """One row per logged step: wall_time, traced, first_nonfinite node (or NaN)."""
        cond = Step.run_key == self.key
        if since is not None:
            cond = sa.and_(cond, Step.step > since)
        df = self.store.read(
            sa.select(Step.step, Step.wall_time, Step.graph_key, Step.first_nonfinite)
            .where(cond)
            .order_by(Step.step)
        )
        df["traced"] = df["graph_key"].notna()
        return df.set_index("step")

    def metrics(self, since: int | None = None) -> pd.DataFrame:
        """Index ``step``; one float column per metric, plus ``wall_time``.

        ``since=k`` reads only steps after k (how a live view grows)."""
        cond = Metric.run_key == self.key
        if since is not None:
            cond = sa.and_(cond, Metric.step > since)
        long = apply_raw(
            self.store.read(
                sa.select(Metric.step, Metric.name, Metric.value, Metric.raw).where(cond)
            ),
            ["value"],
        )
        steps = self.steps(since)[["wall_time"]]
        if long.empty:
            return steps
        wide = long.pivot(index="step", columns="name", values="value").astype(np.float64)
        wide.columns.name = None
        return wide.join(steps, how="outer").sort_index()

    # -- parameters -------------------------------------------------------------
    @cached_property
    def _parameters(self) -> pd.DataFrame:
        df = self.store.read(
            sa.select(Parameter.idx, Parameter.name)
            .where(Parameter.run_key == self.key)
            .order_by(Parameter.idx)
        )
        parts = [_NAME.match(n) for n in df["name"]]
        df["layer"] = pd.array([int(m[1]) if m else None for m in parts], dtype="Int64")
        df["neuron"] = pd.array([int(m[2]) if m else None for m in parts], dtype="Int64")
        df["kind"] = [("weight" if m[3] == "w" else "bias") if m else "other" for m in parts]
        return df

    def parameters(self) -> pd.DataFrame:
        """One row per watched parameter: idx, name, layer, neuron, kind (weight/bias)."""
        return self._parameters.copy()

    def param_indices(self, params: Params) -> list[int]:
        """Parameter indices for ints and/or names; a bad name gets a clear error."""
        table = self._parameters
        if params is None:
            return table["idx"].tolist()
        if isinstance(params, int | str):
            params = [params]
        by_name = dict(zip(table["name"], table["idx"], strict=True))
        out = []
        for p in params:
            if isinstance(p, str):
                if p not in by_name:
                    raise GradtraceError(
                        f"run {self.name!r} has no parameter named {p!r}; "
                        "run.parameters() lists them"
                    )
                out.append(int(by_name[p]))
            elif 0 <= int(p) < len(table):
                out.append(int(p))
            else:
                raise GradtraceError(f"parameter index {p} is out of range 0..{len(table) - 1}")
        return out

    def updates(self, params: Params = None, steps: Steps = None) -> pd.DataFrame:
        """Long table: step, param, name, value_before, grad, value_after, lr."""
        cond = sa.and_(Update.run_key == self.key, _step_filter(Update.step, steps))
        if params is not None:
            cond = sa.and_(cond, Update.param.in_(self.param_indices(params)))
        df = self.store.read(
            sa.select(
                Update.step, Update.param, *[getattr(Update, c) for c in UPDATE_FLOATS], Update.raw
            )
            .where(cond)
            .order_by(Update.param, Update.step)
        )
        df = apply_raw(df, UPDATE_FLOATS)
        for c in UPDATE_FLOATS:
            df[c] = df[c].astype(np.float64)
        names = self._parameters["name"].to_numpy()
        df.insert(2, "name", names[df["param"].to_numpy(dtype=np.int64)] if len(df) else [])
        return df.sort_values(["step", "param"], kind="stable").reset_index(drop=True)

    def param_arrays(self, steps: Steps = None, which: str = "grad") -> pd.DataFrame:
        """Index step, one column per parameter name: ``which`` is "grad" or "data"
        (the value when the step was logged, before its update)."""
        column = {"grad": Step.param_grad, "data": Step.param_data}[which]
        df = self.store.read(
            sa.select(Step.step, column.label("blob"))
            .where(Step.run_key == self.key, _step_filter(Step.step, steps), column.is_not(None))
            .order_by(Step.step)
        )
        names = self._parameters["name"].tolist()
        if df.empty:
            return pd.DataFrame(columns=names, index=pd.Index([], name="step"), dtype=np.float64)
        matrix = np.frombuffer(b"".join(df["blob"]), dtype=_F8).reshape(len(df), -1)
        return pd.DataFrame(matrix, index=pd.Index(df["step"], name="step"), columns=names)

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
        df = self.store.read(
            sa.select(Trace.step).where(Trace.run_key == self.key).order_by(Trace.step)
        )
        return df["step"].tolist()

    def nodes_per_step(self) -> int | None:
        df = self.store.read(sa.select(sa.func.max(Graph.n_nodes)).where(Graph.run_key == self.key))
        value = df.iloc[0, 0] if len(df) else None
        return None if value is None or pd.isna(value) else int(value)

    def _graph_key(self, step: int) -> int:
        df = self.store.read(
            sa.select(Trace.graph_key).where(Trace.run_key == self.key, Trace.step == step)
        )
        if df.empty:
            traced = self.traced_steps()
            hint = (
                f"traced steps run from {traced[0]} to {traced[-1]} ({len(traced)} of them)"
                if traced
                else "this run recorded no node traces (capture='params')"
            )
            raise GradtraceError(f"step {step} of run {self.name!r} has no node trace; {hint}")
        return int(df.iloc[0, 0])

    def _structure(self, graph_key: int) -> pd.DataFrame:
        if graph_key not in self._graphs:
            g = self.store.read(
                sa.select(
                    Graph.ops, Graph.a, Graph.b, Graph.params, Graph.labels, Graph.args
                ).where(Graph.graph_key == graph_key)
            ).iloc[0]
            a = np.frombuffer(g["a"], dtype="<i4").astype(np.int64)
            b = np.frombuffer(g["b"], dtype="<i4").astype(np.int64)
            n = len(a)
            labels = np.full(n, "", dtype=object)
            for k, s in (g["labels"] or {}).items():
                labels[int(k)] = s
            args = np.full(n, np.nan)
            for k, x in (g["args"] or {}).items():
                args[int(k)] = x
            ops = ["" if op == "." else op for op in g["ops"].split(" ")] if n else []
            pairs = zip(a.tolist(), b.tolist(), strict=True)
            df = pd.DataFrame(
                {
                    "node": np.arange(n),
                    "op": ops,
                    "label": labels,
                    "parents": [() if x < 0 else ((x,) if y < 0 else (x, y)) for x, y in pairs],
                    "a": pd.array(np.where(a < 0, 0, a), dtype="Int64"),
                    "b": pd.array(np.where(b < 0, 0, b), dtype="Int64"),
                    "arg": args,
                    "param": pd.array(np.frombuffer(g["params"], dtype="<i4"), dtype="Int64"),
                }
            )
            df.loc[a < 0, "a"] = pd.NA
            df.loc[b < 0, "b"] = pd.NA
            df.loc[df["param"] < 0, "param"] = pd.NA
            df.index = pd.RangeIndex(n, name=None)
            self._graphs[graph_key] = df
        return self._graphs[graph_key]

    def graph(self, step: int) -> pd.DataFrame:
        """The structure of step ``step``'s graph: node, op, a, b, arg, label, param, parents."""
        return self._structure(self._graph_key(step)).copy()

    def nodes(self, step: int) -> pd.DataFrame:
        """Every node of step ``step``: node, op, label, parents, value, grad, param."""
        df = self.store.read(
            sa.select(Trace.graph_key, Trace.data, Trace.grad).where(
                Trace.run_key == self.key, Trace.step == step
            )
        )
        if df.empty:
            self._graph_key(step)  # raises the explanatory error
        row = df.iloc[0]
        out = self._structure(int(row["graph_key"]))[
            ["node", "op", "label", "parents", "a", "b", "arg", "param"]
        ].copy()
        out["value"] = np.frombuffer(row["data"], dtype=_F8)
        out["grad"] = np.frombuffer(row["grad"], dtype=_F8)
        return out

    def first_nonfinite(self) -> dict[str, Any] | None:
        """The first step and node (in topological order) whose value or gradient is
        NaN/inf; for runs without node traces, the first non-finite metric or update."""
        df = self.store.read(
            sa.select(Step.step, Step.first_nonfinite)
            .where(Step.run_key == self.key, Step.first_nonfinite.is_not(None))
            .order_by(Step.step)
            .limit(1)
        )
        if not df.empty:
            step, node = int(df.iloc[0, 0]), int(df.iloc[0, 1])
            row = self.nodes(step).iloc[node]
            return {
                "step": step,
                "node": node,
                "op": row["op"],
                "label": row["label"],
                "value": float(row["value"]),
                "grad": float(row["grad"]),
                "where": "node",
            }
        metrics = self.metrics()
        for source, frame in (
            ("metric", metrics.drop(columns="wall_time", errors="ignore")),
            ("grad", self.gradients()),
            ("value", self.values()),
        ):
            if frame.empty:
                continue
            bad = ~np.isfinite(frame.to_numpy(dtype=np.float64))
            rows = np.flatnonzero(bad.any(axis=1))
            if rows.size:
                i = rows[0]
                col = int(np.flatnonzero(bad[i])[0])
                return {
                    "step": int(frame.index[i]),
                    "node": None,
                    "where": source,
                    "name": frame.columns[col],
                    "value": float(frame.iat[i, col]),
                }
        return None

    # -- export --------------------------------------------------------------------
    def export(self, folder: str | Path, fmt: str = "parquet") -> list[Path]:
        """Write the run's tables into ``folder`` as Parquet or CSV; returns the files."""
        if fmt not in ("parquet", "csv"):
            raise GradtraceError(f"format must be 'parquet' or 'csv', got {fmt!r}")
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise GradtraceError(
                    "Parquet export needs pyarrow: pip install 'gradtrace[parquet]'"
                ) from None
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tables: dict[str, pd.DataFrame] = {
            "metrics": self.metrics().reset_index(),
            "parameters": self.parameters(),
            "updates": self.updates(),
            "steps": self.steps().reset_index(),
        }
        traced = self.traced_steps()
        if traced:
            frames = []
            for step in traced:
                n = self.nodes(step)[["node", "value", "grad"]]
                n.insert(0, "step", step)
                frames.append(n)
            tables["nodes"] = pd.concat(frames, ignore_index=True)
            graph = self.graph(traced[0]).drop(columns="parents")
            tables["graph"] = graph.reset_index(drop=True)
        written = []
        for name, df in tables.items():
            path = out / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(path, index=False)
            else:
                df.to_csv(path, index=False)
            written.append(path)
        info = out / "run.json"
        info.write_text(json.dumps(self.summary(), default=str, indent=2))
        written.append(info)
        return written

    def to_parquet(self, folder: str | Path) -> list[Path]:
        return self.export(folder, "parquet")

    def to_csv(self, folder: str | Path) -> list[Path]:
        return self.export(folder, "csv")
