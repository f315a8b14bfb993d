"""The graph reads of a run: which steps hold a node trace, a step's graph shape and
its nodes' values and gradients. ``RunView`` inherits them.

    >>> run.traced_steps()                     # doctest: +SKIP
    >>> run.nodes(10)                          # doctest: +SKIP

A graph shape is stored once, column-wise (``graphs``), and read once per RunView:
``structure(graph_key)`` caches it; ``nodes(step)`` adds one row of ``traces``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.errors import GradtraceError
from gradtrace.tracer.read.frames import gc_paused, parents_array, str_series
from gradtrace.tracer.read.selection import as_int
from gradtrace.tracer.storage.codec import (
    DamagedBlob,
    check_crc,
    decode_floats,
    decode_int32,
    decode_kinds,
    decode_ops,
)
from gradtrace.tracer.storage.models import Graph, Trace

if TYPE_CHECKING:
    from gradtrace.tracer.read.store import Store

GRAPHS_KEPT = 32  # graph shapes a RunView keeps decoded (most runs have one)


class GraphReads:
    """Graph reads of one run; the class using it provides ``store``, ``key``,
    ``name``, ``_graphs`` (a dict), ``select_rows`` and ``select_max``."""

    store: Store
    key: int
    name: str
    _graphs: OrderedDict[int, pd.DataFrame]

    def _damaged(self, e: Exception, what: str, step: int) -> Exception:  # pragma: no cover
        raise NotImplementedError  # ParamReads'

    def select_rows(self, stmt: sa.Select) -> list[tuple]:  # pragma: no cover - RunView's
        raise NotImplementedError

    def select_max(self, stmt: sa.Select) -> int | None:  # pragma: no cover - RunView's
        raise NotImplementedError

    def traced_steps(self) -> list[int]:
        rows = self.select_rows(
            sa.select(Trace.step).where(Trace.run_key == self.key).order_by(Trace.step)
        )
        return [int(r[0]) for r in rows]

    def nodes_per_step(self) -> int | None:
        return self.select_max(
            sa.select(sa.func.max(Graph.n_nodes)).where(Graph.run_key == self.key)
        )

    def _no_trace(self, step: int) -> GradtraceError:
        traced = self.traced_steps()
        hint = (
            f"traced steps run from {traced[0]} to {traced[-1]} ({len(traced)} of them)"
            if traced
            else "this run recorded no node traces (capture='params')"
        )
        return GradtraceError(f"step {step} of run {self.name!r} has no node trace; {hint}")

    @gc_paused()
    def structure(self, graph_key: int) -> pd.DataFrame:
        """One stored graph shape by ``graph_key`` (cached): node, op, label, a, b, ..."""
        if graph_key in self._graphs:
            self._graphs.move_to_end(graph_key)  # an OrderedDict: least recent first
        else:
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
            ops = decode_ops(g["ops"], n)
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
            while len(self._graphs) > GRAPHS_KEPT:
                self._graphs.popitem(last=False)
        return self._graphs[graph_key]

    def graph(self, step: int) -> pd.DataFrame:
        """The structure of step ``step``'s graph: node, op, label, parents, a, b, arg,
        param, kind. Node i's operands are ``parents`` (node indices, always smaller
        than i). ``kind`` says what a leaf stands for: "parameter", "input",
        "constant" or "target" (see ``Value.kind``), "leaf" in graphs recorded before
        gradtrace stored kinds, "" for a computed node."""
        step = as_int(step, "step")
        rows = self.select_rows(
            sa.select(Trace.graph_key).where(Trace.run_key == self.key, Trace.step == step)
        )
        if not rows:
            raise self._no_trace(step)
        return self.structure(int(rows[0][0])).copy()

    def nodes(self, step: int) -> pd.DataFrame:
        """Every node of step ``step``: the graph columns plus value and grad."""
        step = as_int(step, "step")
        rows = self.select_rows(
            sa.select(Trace.graph_key, Trace.data, Trace.grad, Trace.codec, Trace.crc).where(
                Trace.run_key == self.key, Trace.step == step
            )
        )
        if not rows:
            raise self._no_trace(step)
        graph_key, data, grad, codec, crc = rows[0]
        out = self.structure(int(graph_key)).copy()
        what = f"the trace of step {step}"
        try:
            check_crc(crc, data, grad)
            out["value"] = decode_floats(data, codec, len(out), what)
            out["grad"] = decode_floats(grad, codec, len(out), what)
        except DamagedBlob as e:
            raise self._damaged(e, "node values and gradients", step) from None
        return out
