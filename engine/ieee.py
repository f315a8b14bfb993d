"""Float arithmetic that follows IEEE 754 instead of raising.

    >>> div(1.0, 0.0), log(0.0), exp(1000.0)
    (inf, -inf, inf)

Python raises on ``1.0 / 0``, ``0.0 ** -1`` and ``math.exp(1000)``; a flight
recorder has to see the ``inf`` or NaN a diverging run produces instead, so the
engine's ops compute through these. Plain functions on floats, no Values.
"""

from __future__ import annotations

import math

inf, nan = math.inf, math.nan


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:  # IEEE: a/0 is ±inf, 0/0 is NaN
        if a == 0.0 or a != a:
            return nan
        return math.copysign(inf, a) * math.copysign(1.0, b)


def pow(a: float, k: float) -> float:
    try:
        r = a**k
    except ZeroDivisionError:  # 0.0 ** negative
        return inf if (k % 2 != 1 or math.copysign(1.0, a) > 0) else -inf
    except OverflowError:
        if a < 0.0 and k % 1.0:  # negative base, fractional exponent: no real result
            return nan
        return inf if a > 0 or k % 2 == 0 else -inf
    if type(r) is complex:  # negative base, fractional exponent
        return nan
    return float(r)


def exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return inf


def log(a: float) -> float:
    if a > 0.0:
        return math.log(a)
    if a == 0.0:
        return -inf
    return nan  # negative or NaN


def sigmoid(a: float) -> float:
    # Two branches so neither exp can overflow.
    if a >= 0.0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)
