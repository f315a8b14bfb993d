"""How numbers and durations read, the same on the command line and in the dashboard.

>>> number(0.000123456, 4), number(float("nan")), number(float("-inf")), number(None)
('0.0001235', 'NaN', '-inf', '-')
>>> duration(3725.0)
'1h02m'
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

MISSING = "-"


def number(x: Any, digits: int = 6) -> str:
    """A number in ``digits`` significant digits; ``NaN``, ``inf`` and ``-inf`` spelt
    out; ``-`` for a missing one (None, pandas' NA); anything else as ``str``.

    The dashboard's grids format with ``gtNumber`` (dashboard/assets/dashAgGridFunctions.js),
    which follows these rules to the character."""
    if x is None or type(x).__name__ == "NAType":
        return MISSING
    if isinstance(x, bool) or not isinstance(x, Real):
        return str(x)
    if isinstance(x, Integral):
        return str(int(x))
    f = float(x)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}g}"


def duration(seconds: float | None) -> str:
    """``0.07s``, ``12.3s``, ``3m05s``, ``1h02m``, ``2d03h``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    s = max(seconds, 0.0)
    if s < 10:
        return f"{s:.2f}s"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"
