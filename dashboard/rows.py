"""Rows for the AG Grid tables: runs as JSON-safe cells, and the config keys that
differ between runs.

>>> cell(float("nan")) is None
True
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd


def cell(value: Any) -> Any:
    """A JSON-safe grid cell: NaN/None -> None, non-finite floats and containers -> text."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, list | tuple | dict | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def config_diff(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``config.*`` keys whose values differ between the rows of ``runs``:
    one row per key, one column per run id."""
    cols = [c for c in runs.columns if c.startswith("config.")]
    rows = []
    for c in cols:
        values = [json.dumps(cell(v), sort_keys=True) for v in runs[c]]
        if len(set(values)) > 1:
            rows.append(
                {"key": c[len("config.") :], **{i: cell(v) for i, v in zip(runs["id"], runs[c])}}
            )
    return pd.DataFrame(rows, columns=["key", *runs["id"].tolist()])
