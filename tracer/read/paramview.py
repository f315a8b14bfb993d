"""The parameter reads of a run: which parameters it has, their updates, and the
per-step arrays of every parameter's value and gradient. ``RunView`` inherits them.

    >>> run.parameters()                       # doctest: +SKIP
    >>> run.updates(params=["layers.0.neurons.0.w.0"], steps=range(0, 100))  # doctest: +SKIP
    >>> run.gradients(steps=range(0, 10_000, 10))                              # doctest: +SKIP

``gradients()`` and ``values()`` read one table each (``param_grads``,
``param_values``): a row per step holding every parameter, so a read touches
the rows of the steps it asks for and the array it asks for, nothing else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cached_property
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from gradtrace.tracer.errors import GradtraceError, NotAGradtraceDatabase
from gradtrace.tracer.read.frames import STR, gc_paused
from gradtrace.tracer.read.selection import (
    Params,
    Steps,
    as_int,
    columns,
    f8,
    i8,
    keep_mask,
    step_filter,
)
from gradtrace.tracer.storage.codec import DamagedBlob, apply_raw, decode_matrix
from gradtrace.tracer.storage.db import describe
from gradtrace.tracer.storage.models import Parameter, ParamGrads, ParamValues, Update
from gradtrace.tracer.validate import shown

if TYPE_CHECKING:
    from gradtrace.tracer.read.store import Store

UPDATE_FLOATS = ["value_before", "grad", "value_after", "lr"]
CHUNK_STEPS = 2000  # the per-step arrays are walked this many steps at a time
ARRAYS = {"grad": (ParamGrads, ParamGrads.grad), "data": (ParamValues, ParamValues.data)}
WHAT = {"grad": "parameter gradients", "data": "parameter values"}


class ParamReads:
    """Parameter reads of one run; the class using it provides ``store``, ``key``,
    ``name`` and ``select_rows``."""

    store: Store
    key: int
    name: str

    def select_rows(self, stmt: sa.Select) -> list[tuple]:  # pragma: no cover - RunView's
        raise NotImplementedError

    def _damaged(self, e: DamagedBlob, what: str, step: int) -> NotAGradtraceDatabase:
        """The error for a stored array that failed its checksum: run, step, file."""
        where = describe(self.store.url)
        return NotAGradtraceDatabase(
            f"the {what} of run {self.name!r} at step {step} in {where} are damaged ({e}); "
            f"the other steps still read; check the file with `gradtrace db check --db "
            f"{where}` and restore it from a copy"
        )

    def _matrix(self, rows: list, at: int, which: str, n: int) -> np.ndarray:
        """The arrays in columns ``at`` (blob), ``at + 1`` (codec) and ``at + 2`` (CRC)
        of ``rows``, whose column 0 is the step, as a steps x ``n`` matrix."""
        try:
            return decode_matrix(
                [r[at] for r in rows],
                [r[at + 1] for r in rows],
                n,
                f"the {WHAT[which]} of run {self.name!r}",
                [r[at + 2] for r in rows],
            )
        except DamagedBlob as e:
            raise self._damaged(e, WHAT[which], int(rows[e.row][0])) from None

    @cached_property
    def _parameters(self) -> pd.DataFrame:
        c = columns(
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
                "idx": i8(c["idx"]),
                "name": pd.Series(list(c["name"]), dtype=STR),
                "group": pd.Series(list(c["param_group"]), dtype=STR),
                "layer": pd.array(list(c["layer"]), dtype="Int64"),
                "neuron": pd.array(list(c["neuron"]), dtype="Int64"),
                "kind": pd.Series(list(c["kind"]), dtype=STR),
                "input": pd.array(list(c["input_index"]), dtype="Int64"),
            }
        )

    @cached_property
    def param_names(self) -> np.ndarray:
        """Every watched parameter's name, by index."""
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
        elif not isinstance(params, list | tuple | range | np.ndarray | pd.Index):
            raise GradtraceError(
                f"params must be a parameter name or index, or a list of them, got "
                f"{shown(params)} (run.parameters() lists them)"
            )
        by_name = {name: i for i, name in enumerate(self.param_names)}
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
                i = as_int(p, "a parameter")
                if not 0 <= i < n:
                    raise GradtraceError(
                        f"parameter index {i} is out of range: run {self.name!r} has {n} parameters"
                    )
                out.append(i)
        return out

    @gc_paused()
    def updates(self, params: Params = None, steps: Steps = None) -> pd.DataFrame:
        """Long table: step, param, name, value_before, grad, value_after, lr."""
        cond, keep = step_filter(Update.step, steps)
        where = [Update.run_key == self.key, cond]
        if params is not None:
            where.append(Update.param.in_(sorted(set(self.param_indices(params)))))
        elif steps is not None:
            # Every parameter, a few steps: one index seek per parameter instead of a
            # scan of the run's rows (the primary key leads with the parameter).
            where.append(Update.param.in_(range(len(self._parameters))))
        c = columns(
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
        step, param = i8(c["step"]), i8(c["param"])
        floats = {col: f8(c[col]) for col in UPDATE_FLOATS}
        apply_raw(floats, c["raw"])
        order = np.lexsort((param, step))
        mask = keep_mask(step, keep)
        if mask is not None:
            order = order[mask[order]]
        return pd.DataFrame(
            {
                "step": step[order],
                "param": param[order],
                "name": pd.Series(self.param_names[param[order]], dtype=STR),
                **{col: values[order] for col, values in floats.items()},
            }
        )

    @gc_paused()
    def param_arrays(self, steps: Steps = None, which: str = "grad") -> pd.DataFrame:
        """Index step, one column per parameter name: ``which`` is "grad" or "data"
        (the value when the step was logged, before its update)."""
        if which not in ARRAYS:
            raise ValueError(f"which must be 'grad' or 'data', got {which!r}")
        table, column = ARRAYS[which]
        cond, keep = step_filter(table.step, steps)
        rows = self.select_rows(
            sa.select(table.step, column, table.codec, table.crc)
            .where(table.run_key == self.key, cond)
            .order_by(table.step)
        )
        names = pd.Index(list(self.param_names))
        if keep is not None:
            rows = [r for r in rows if r[0] in keep]
        index = pd.Index(i8([r[0] for r in rows]), name="step")
        matrix = self._matrix(rows, 1, which, len(names))
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

    def param_chunks(
        self, upto: int | None, start: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(steps, data, grad) of the per-step parameter arrays, a chunk of steps at a
        time, in step order, from step ``start`` up to step ``upto`` (keyset
        pagination on the key)."""
        n = len(self._parameters)
        v, g = ParamValues, ParamGrads
        after = None if start is None else start - 1
        while True:
            cond = [v.run_key == self.key]
            if after is not None:
                cond.append(v.step > after)
            if upto is not None:
                cond.append(v.step <= upto)
            rows = self.select_rows(
                sa.select(v.step, v.data, v.codec, v.crc, g.grad, g.codec, g.crc)
                .join(g, sa.and_(g.run_key == v.run_key, g.step == v.step))
                .where(*cond)
                .order_by(v.step)
                .limit(CHUNK_STEPS)
            )
            if not rows:
                return
            steps = i8([r[0] for r in rows])
            yield steps, self._matrix(rows, 1, "data", n), self._matrix(rows, 4, "grad", n)
            after = int(steps[-1])
