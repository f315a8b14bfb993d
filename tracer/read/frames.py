"""Building DataFrames from rows: the string dtype, string and parents columns made in
C loops, the collector held off while a bulk read allocates.

    >>> with gc_paused():                       # doctest: +SKIP
    ...     df = pd.DataFrame(rows)

Both :mod:`store` (the runs list) and :mod:`runview` (one run) build on it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat

import numpy as np
import pandas as pd

STR = pd.Series(["x"]).dtype  # pandas' string dtype (``str`` in pandas 3, object before)
_ARROW_STR = getattr(STR, "storage", None) == "pyarrow"


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a bulk read allocates its rows.

    Tens of thousands of row tuples set off full collections, and with pandas and
    SQLAlchemy loaded each one walks a large heap (it doubled ``metrics()`` on a
    10,000-step run). Rows make no cycles, so nothing is left for the collector.
    Nested and concurrent uses (dashboard threads) restore the state once, at the end.
    Also a decorator: ``@gc_paused()`` over a read that builds a frame from its rows.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def str_series(values: Sequence[str] | np.ndarray) -> pd.Series:
    """A Series of ``str`` in pandas' string dtype, ``str_series(["a", ""])``.

    Where that dtype is stored by pyarrow, the array is made by pyarrow in one C
    loop: the same Series as ``pd.Series(values, dtype=STR)``, without pandas'
    per-item checks (a graph's op, label and kind columns are one item per node).
    """
    if _ARROW_STR:
        import pyarrow as pa

        return pd.Series(pd.array(pa.array(values, pa.large_string()), dtype=STR))
    return pd.Series(values, dtype=STR)


def parents_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each node's operands as a tuple of node indices, ``()``, ``(a,)`` or ``(a, b)``,
    in an object array; ``a``/``b`` hold -1 where there is no operand.

        >>> parents_array(np.array([-1, -1, 0, 2]), np.array([-1, -1, 1, -1])).tolist()
        [(), (), (0, 1), (2,)]

    The tuples are made by ``zip`` over each kind of node at once, not one
    Python branch per node."""
    out = np.empty(len(a), dtype=object)
    has_a = a >= 0
    two = has_a & (b >= 0)
    one = has_a & ~two
    for mask, columns in ((two, (a, b)), (one, (a,))):
        picked = [c[mask].tolist() for c in columns]
        out[mask] = np.fromiter(zip(*picked), dtype=object, count=len(picked[0]))
    leaves = int((~has_a).sum())
    out[~has_a] = np.fromiter(repeat((), leaves), dtype=object, count=leaves)
    return out
