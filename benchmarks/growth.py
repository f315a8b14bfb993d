"""How a cost grows with the work: the exponent k of time ~ size**k.

    >>> round(exponent([1, 2, 4], [3.0, 12.0, 48.0]), 6)
    2.0

The least-squares slope of log(time) on log(size), in the standard library so a
benchmark that measures a bare interpreter can use it without importing numpy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """The fitted growth exponent of ``times`` over ``sizes`` (at least two of each)."""
    logs = [math.log(s) for s in sizes]
    return statistics.linear_regression(logs, [math.log(t) for t in times]).slope
