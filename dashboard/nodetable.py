"""The node table of one step, served a block at a time to ag-grid's infinite row
model: sorting and filtering happen here on numpy arrays, so a 65,000-node step
never travels to the browser whole."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.dashboard.context import RunCache
from gradtrace.tracer.display import number as shown

NONFINITE = {"cell-nonfinite": "typeof params.value === 'string'"}
_NUM = {
    "filter": "agNumberColumnFilter",
    "cellClassRules": NONFINITE,
    "filterParams": {
        "filterOptions": ["greaterThan", "lessThan", "equals", "inRange"],
        "maxNumConditions": 1,
    },
}
_TEXT = {
    "filter": "agTextColumnFilter",
    "filterParams": {"filterOptions": ["contains", "equals", "startsWith"], "maxNumConditions": 1},
}
_FLOAT = {**_NUM, "valueFormatter": {"function": "gtNumber(params.value)"}}
COLUMNS: list[dict[str, Any]] = [
    {"field": "node", "maxWidth": 110, **_NUM},
    {"field": "op", "headerName": "op / leaf kind", "maxWidth": 130, **_TEXT},
    {"field": "label", "headerName": "label / parameter", "minWidth": 200, **_TEXT},
    {"field": "value", **_FLOAT},
    {"field": "grad", **_FLOAT},
    {"field": "abs_grad", "headerName": "|grad|", "sort": "desc", **_FLOAT},
    {"field": "parents", "sortable": False, "filter": False},
]
NUMERIC = ("node", "value", "grad", "abs_grad")


def columns(nodes: pd.DataFrame, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The table's columns as arrays (labels of parameters are their names; a leaf's
    op is its kind: parameter, input, constant or target)."""
    param = nodes["param"].to_numpy(dtype=np.int64, na_value=-1)
    names_arr = np.asarray(list(names) + [""], dtype=object)
    label = np.where(param >= 0, names_arr[param], nodes["label"].to_numpy(dtype=object))
    op = nodes["op"].to_numpy(dtype=object)
    grad = nodes["grad"].to_numpy(dtype=np.float64)
    return {
        "node": nodes["node"].to_numpy(dtype=np.int64),
        "op": np.where(op == "", nodes["kind"].to_numpy(dtype=object), op),
        "label": label,
        "value": nodes["value"].to_numpy(dtype=np.float64),
        "grad": grad,
        "abs_grad": np.abs(grad),
        "a": nodes["a"].to_numpy(dtype=np.int64, na_value=-1),
        "b": nodes["b"].to_numpy(dtype=np.int64, na_value=-1),
    }


def number(x: float) -> float | str:
    """A float cell; NaN/inf as text, which the grid highlights."""
    return x if np.isfinite(x) else shown(x, 4)


def _condition(values: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    kind, arg = spec.get("type"), spec.get("filter")
    if spec.get("filterType") == "number":
        if arg is None:
            return np.ones(len(values), dtype=bool)
        v = values.astype(np.float64)
        with np.errstate(invalid="ignore"):
            if kind == "greaterThan":
                return v > arg
            if kind == "lessThan":
                return v < arg
            if kind == "inRange":
                return (v >= arg) & (v <= spec.get("filterTo", arg))
            return v == arg
    text = str(arg or "").lower()
    low = np.char.lower(values.astype(str))
    if kind == "equals":
        return low == text
    if kind == "startsWith":
        return np.char.startswith(low, text)
    return np.char.find(low, text) >= 0


def select(
    cols: dict[str, np.ndarray], filter_model: dict | None, sort_model: list | None
) -> np.ndarray:
    """Row order after filtering and sorting (NaN/inf first when sorting descending by
    a number: they are what one looks for)."""
    keep = np.ones(len(cols["node"]), dtype=bool)
    for col, spec in (filter_model or {}).items():
        if col not in cols:
            continue
        conds = spec.get("conditions") or [spec]
        parts = [_condition(cols[col], c) for c in conds]
        both = (
            np.logical_and.reduce(parts)
            if spec.get("operator") == "AND"
            else (np.logical_or.reduce(parts))
        )
        keep &= both
    rows = np.flatnonzero(keep)
    for item in reversed(sort_model or []):
        col, desc = item.get("colId"), item.get("sort") == "desc"
        if col not in cols:
            continue
        key = cols[col][rows]
        if col in NUMERIC:
            key = key.astype(np.float64)
            bad = ~np.isfinite(key)
            key = np.where(bad, np.inf, key)
            order = np.argsort(-key if desc else key, kind="stable")
        else:
            order = np.argsort(key.astype(str), kind="stable")
            order = order[::-1] if desc else order
        rows = rows[order]
    return rows


def page(
    rc: RunCache, step: int, request: dict[str, Any], names: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """Rows ``startRow:endRow`` of step ``step``'s node table, and how many rows match."""
    cols = rc.big.get(("table", step), lambda: columns(rc.nodes(step), names))
    key = (
        "order",
        step,
        json.dumps(request.get("filterModel"), sort_keys=True),
        json.dumps(request.get("sortModel")),
    )
    order = rc.big.get(
        key, lambda: select(cols, request.get("filterModel"), request.get("sortModel"))
    )
    start = max(int(request.get("startRow") or 0), 0)
    end = max(int(request.get("endRow") or start + 100), start)
    a, b = cols["a"], cols["b"]
    out = []
    for i in order[start:end].tolist():
        out.append(
            {
                "node": int(cols["node"][i]),
                "op": cols["op"][i],
                "label": cols["label"][i],
                "value": number(float(cols["value"][i])),
                "grad": number(float(cols["grad"][i])),
                "abs_grad": number(float(cols["abs_grad"][i])),
                "parents": ", ".join(str(p) for p in (a[i], b[i]) if p >= 0),
            }
        )
    return out, len(order)
