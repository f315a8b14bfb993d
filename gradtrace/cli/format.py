"""Text rendering for the ``gradtrace`` command line: tables, durations, ``show``.

Pure functions of DataFrames and RunViews, so the CLI module stays about commands.

    >>> duration(3725.0)
    '1h02m'
    >>> print(table(["a", "n"], [["x", 1], ["yy", 10]], right={1}))
    a    n
    x    1
    yy  10
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from gradtrace.cli.text import one_field, terminal_safe
from gradtrace.tracer.display import duration, number
from gradtrace.tracer.report import Origin, RunView, upstream_params

MAX_CELL = 32
TOP_GRADS = 10
SHOW_PARAMS = 8


def when(ts: datetime | pd.Timestamp | None) -> str:
    """A UTC time in the local time zone, to the second."""
    if ts is None or pd.isna(ts):
        return "-"
    return pd.Timestamp(ts).to_pydatetime().astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cut(text: str, width: int = MAX_CELL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], right: set[int] = frozenset()
) -> str:
    """Columns padded to their widest cell, two spaces apart; ``right`` ones right-aligned."""
    cells = [[terminal_safe(str(h)) for h in headers]]
    cells += [[terminal_safe(str(c)) for c in row] for row in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(headers))]
    lines = []
    for r in cells:
        parts = [
            c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def runs_table(df: pd.DataFrame) -> str:
    """``gradtrace runs``: one line per run, with the final loss and acc if logged."""
    metrics = [m for m in ("loss", "acc") if f"metric.{m}" in df]
    headers = ["ID", "NAME", "EXPERIMENT", "STATUS", "STARTED", "DURATION", "STEPS", "DIVERGED"]
    headers += [m.upper() for m in metrics]
    rows = [
        [
            d["id"][:8],
            cut(d["name"]),
            cut(d["experiment"], 20),
            d["status"],
            when(d["started_at"]),
            duration(d["duration_s"]),
            d["steps"],
            _diverged(d.get("diverged_at_step")),
            *(number(d[f"metric.{m}"], 4) if d["steps"] else "-" for m in metrics),
        ]
        for d in df.to_dict("records")
    ]
    return table(headers, rows, right={6, 7, *range(8, 8 + len(metrics))})


def _diverged(step: Any) -> str:
    """``step 41`` for a run whose first NaN/inf came at step 41, ``-`` for a clean one."""
    return "-" if step is None or pd.isna(step) else f"step {int(step)}"


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v if isinstance(v, str) else json.dumps(v)))
    return out


def _model(spec: dict[str, Any] | None) -> str:
    if not spec:
        return "-"
    rest = " ".join(f"{k}={json.dumps(v)}" for k, v in spec.items() if k != "type")
    return f"{spec.get('type', '?')} {rest}".strip()


def show(view: RunView) -> str:
    """``gradtrace show``: the run's facts, final metrics, largest gradients, first NaN."""
    s = view.summary()
    lines: list[tuple[str, str]] = [
        ("run", s["id"]),
        ("name", s["name"]),
        ("experiment", s["experiment"]),
        ("status", s["status"]),
        ("started", f"{when(s['started_at'])}  (duration {duration(s['duration_s'])})"),
    ]
    last = s["last_step"]
    lines.append(("steps", f"{s['steps']}" + (f" (last step {last})" if last is not None else "")))
    nodes = s["nodes_per_step"]
    capture = s["capture"] + (f", {nodes:,} nodes per step" if nodes else "")
    lines += [
        ("capture", capture),
        ("parameters", str(s["parameters"])),
        ("seed", "-" if s["seed"] is None else str(s["seed"])),
        ("model", _model(s["model"])),
    ]
    config = _flat(s["config"])
    for i, (k, v) in enumerate(config or [("-", "")]):
        lines.append(("config" if i == 0 else "", f"{k} = {v}" if k != "-" else "-"))
    if s["tags"]:
        lines.append(("tags", ", ".join(s["tags"])))
    if s["notes"]:
        lines.append(("notes", cut(s["notes"], 100)))
    if s["status"] in ("running", "crashed"):
        lines.append(("writer", f"pid {s['pid']} on {s['host']}"))
    if s["error"]:
        lines.append(("error", cut(s["error"].strip().splitlines()[-1], 100)))
    final = view.last_metrics()
    if len(final):
        text = "  ".join(f"{n} {number(v)}" for n, v in final["value"].items())
        steps = sorted(set(final["step"].tolist()))
        at = f"step {steps[0]}" if len(steps) == 1 else "their last steps"
        lines.append(("final", f"{text}  (at {at})"))
    else:
        lines.append(("final", "no metrics logged"))
    out = [f"{k:<11} {v}".rstrip() for k, v in lines]
    out += ["", *_top_grads(view, last), "", _nonfinite(view.first_nonfinite())]
    return "\n".join(out)


def _top_grads(view: RunView, last: int | None) -> list[str]:
    if last is None or not len(view.parameters()):
        return ["largest |grad|: no parameters recorded"]
    grads = view.gradients(steps=last)
    if grads.empty:
        return [f"largest |grad|: no parameter arrays at step {last}"]
    g = grads.iloc[0].to_numpy(dtype=np.float64)
    v = view.values(steps=last).iloc[0].to_numpy(dtype=np.float64)
    mag = np.where(np.isnan(g), np.inf, np.abs(g))  # NaN first: it is the news
    order = np.argsort(-mag, kind="stable")[:TOP_GRADS]
    names = grads.columns
    rows = [[int(i), names[i], number(g[i], 6), number(v[i], 6)] for i in order]
    head = f"largest |grad| at step {last} ({min(TOP_GRADS, len(g))} of {len(g)} parameters):"
    body = table(["IDX", "PARAMETER", "GRAD", "VALUE"], rows, right={0, 2, 3})
    return [head, *("  " + line for line in body.splitlines())]


def _nonfinite(origin: Origin | None) -> str:
    if origin is None:
        return "first non-finite: none (every value, gradient and metric is finite)"
    return f"first non-finite: {one_field(origin.story)}"


def why(view: RunView) -> str:
    """``gradtrace why``: where the first NaN/inf came from, in words and in parts."""
    origin = view.first_nonfinite()
    if origin is None:
        return f"run {one_field(repr(view.name))}: every value, gradient and metric is finite"
    o = origin
    lines = [one_field(o.story), "", f"{'kind':<10} {o.kind} ({KIND_TEXT[o.kind]})"]
    lines.append(f"{'step':<10} {o.step}")
    if o.node is not None:
        lines.append(f"{'node':<10} {o.node}, op {one_field(o.op) or 'leaf'}")
    if o.name is not None:
        what = "metric" if o.kind == "metric" else "parameter" if o.param is not None else "label"
        lines.append(f"{what:<10} {one_field(o.name)}")
    if o.kind == "update":
        lines.append(
            f"{'update':<10} {number(o.before)} - lr {number(o.lr)} x grad "
            f"{number(o.grad)} -> {number(o.value)}"
        )
    else:
        lines.append(
            f"{'value':<10} {number(o.value)}"
            + (f", grad {number(o.grad)}" if o.grad is not None else "")
        )
    for p in o.parents:
        name = f" `{one_field(p.name)}`" if p.name else ""
        sent = f", sent {number(p.sent)}" if p.sent is not None else ""
        lines.append(
            f"{'input':<10} node {p.node}{name} ({one_field(p.op) or 'leaf'}): "
            f"value {number(p.value)}{sent}"
        )
    lines += _involved(view, o)
    if not o.exact:
        lines.append(f"{'exact':<10} no: step {o.step} has no node trace")
    return "\n".join(lines)


def _involved(view: RunView, o: Origin) -> list[str]:
    """The parameters the origin node depends on, or the updated parameter."""
    if o.node is None or not o.exact:  # the parameter, if any, is named above
        return []
    g = view.graph(o.step)
    found = upstream_params(
        g["a"].to_numpy(dtype=np.int64, na_value=-1),
        g["b"].to_numpy(dtype=np.int64, na_value=-1),
        g["param"].to_numpy(dtype=np.int64, na_value=-1),
        o.node,
    )
    if not found:
        return [f"{'parameters':<10} none (node {o.node} depends on no watched parameter)"]
    names = view.parameters()["name"].to_numpy(dtype=object)
    shown = ", ".join(one_field(names[i]) for i in found[:SHOW_PARAMS])
    more = f" and {len(found) - SHOW_PARAMS} more" if len(found) > SHOW_PARAMS else ""
    return [f"{'parameters':<10} {len(found)} upstream of node {o.node}: {shown}{more}"]


KIND_TEXT = {
    "forward": "an op made it from finite inputs, or a leaf was fed it",
    "backward": "a gradient went non-finite while every value was finite",
    "update": "an update made a finite parameter non-finite",
    "metric": "a logged metric, with everything else finite",
}
