"""One way numbers and durations read, on the command line and in the dashboard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from gradtrace.tracer.display import duration, number

NUMBERS = [
    (0.000123456, 4, "0.0001235"),
    (0.000123456, 6, "0.000123456"),
    (1.0 / 3.0, 6, "0.333333"),
    (-2.5e300, 4, "-2.5e+300"),
    (math.nan, 6, "NaN"),
    (math.inf, 6, "inf"),
    (-math.inf, 4, "-inf"),
    (np.float64(-0.0), 6, "-0"),
    (np.int64(41), 6, "41"),
    (12345678, 4, "12345678"),  # an int keeps every digit
    (None, 6, "-"),
    (pd.NA, 6, "-"),
    (True, 6, "True"),
    ("text", 6, "text"),
]


@pytest.mark.parametrize(("x", "digits", "shown"), NUMBERS)
def test_number(x, digits, shown):
    assert number(x, digits) == shown


DURATIONS = [
    (0.07, "0.07s"),
    (12.34, "12.3s"),
    (185.0, "3m05s"),
    (3725.2, "1h02m"),
    (183600.0, "2d03h"),
    (-1.0, "0.00s"),
    (None, "-"),
    (math.nan, "-"),
    (math.inf, "-"),
]


@pytest.mark.parametrize(("seconds", "shown"), DURATIONS)
def test_duration(seconds, shown):
    assert duration(seconds) == shown
