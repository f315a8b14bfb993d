"""What a read of a run selects, as SQL: the ``steps`` and ``params`` arguments of
``RunView`` reads, and the small converters from row tuples to numpy columns.

    >>> cond, keep = step_filter(Update.step, range(0, 100, 10))   # doctest: +SKIP

``steps`` arguments are step numbers (not positions): an int, a ``range`` or
``slice`` (stop excluded, any positive stride), or any list/tuple/array of ints.
A long list is read as one range and filtered in memory (``keep``).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import sqlalchemy as sa

Steps = int | range | slice | Sequence[int] | np.ndarray | None
Params = int | str | Sequence[int | str] | None

MAX_IN = 500  # longer step lists are read as one range and filtered in memory


def as_int(x: Any, what: str) -> int:
    """``x`` as an int; a bool, float or anything else is a TypeError naming ``what``."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, Integral):
        raise TypeError(f"{what} must be an int, got {type(x).__name__} {x!r}")
    return int(x)


def step_filter(column: sa.ColumnElement, steps: Steps) -> tuple[sa.ColumnElement, set | None]:
    """(SQL condition for ``steps``, exact set of steps to keep afterwards or None)."""
    if steps is None:
        return sa.true(), None
    if isinstance(steps, str | bytes | bool | np.bool_ | float):
        raise TypeError(f"steps must be an int, a range, a slice or a list of ints, got {steps!r}")
    if isinstance(steps, Integral):
        return column == int(steps), None
    if isinstance(steps, slice):
        stride = 1 if steps.step is None else as_int(steps.step, "a slice's step")
        lo = None if steps.start is None else as_int(steps.start, "a slice's start")
        hi = None if steps.stop is None else as_int(steps.stop, "a slice's stop")
        return interval(column, lo, hi, stride), None
    if isinstance(steps, range):
        if not steps:
            return sa.false(), None
        up = steps if steps.step > 0 else steps[::-1]
        return interval(column, up.start, up[-1] + 1, up.step), None
    try:
        wanted = sorted({as_int(s, "a step") for s in steps})
    except TypeError as e:
        raise TypeError(f"{e}; steps must be an int, a range, a slice or a list of ints") from None
    if not wanted:
        return sa.false(), None
    if len(wanted) <= MAX_IN:
        return column.in_(wanted), None
    return sa.and_(column >= wanted[0], column <= wanted[-1]), set(wanted)


def interval(
    column: sa.ColumnElement, lo: int | None, hi: int | None, stride: int
) -> sa.ColumnElement:
    """``lo <= column < hi`` (either bound may be None), every ``stride``-th from ``lo``."""
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


def keep_mask(steps: np.ndarray, keep: set | None) -> np.ndarray | None:
    """Row mask for the exact step set of a long step list (None: keep all)."""
    if keep is None:
        return None
    return np.isin(steps, np.fromiter(keep, dtype=np.int64, count=len(keep)))


def columns(keys: list[str], rows: list[tuple]) -> dict[str, tuple]:
    """Row tuples turned into one tuple per column, by name."""
    if not rows:
        return {k: () for k in keys}
    return dict(zip(keys, zip(*rows, strict=True), strict=True))


def f8(values: tuple | list) -> np.ndarray:
    """A float64 array (None reads as NaN)."""
    return np.array(values, dtype=np.float64) if len(values) else np.empty(0, np.float64)


def i8(values: tuple | list) -> np.ndarray:
    """An int64 array."""
    return np.array(values, dtype=np.int64) if len(values) else np.empty(0, np.int64)
