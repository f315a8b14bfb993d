"""The compare page (``/compare?runs=id1,id2,...``): what changed between runs.

Every metric as small multiples with the runs overlaid (log y, smoothing, a y range
no diverged run can blow up), a table of final and best values and durations, the
settings that differ, and for exactly two runs the first divergence with links to
that step and node on each run's page. Reached from the runs list's selection; the
URL carries the runs (ids, id prefixes or names), so a comparison can be shared.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import dash
from dash import Dash, Input, Output, dcc, html
from dash.exceptions import PreventUpdate
from gradtrace.dashboard.comparefigs import compare_figure
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.ui import card, log_y_toggle, message
from gradtrace.tracer.display import duration, number
from gradtrace.tracer.report import SETTINGS, RunDiff, metric_series, metric_sides, settings_of

from gradtrace import tracer

MAX_RUNS = 10


def layout(runs: str | None = None, **_: Any) -> html.Div:
    """The page skeleton for the runs in the URL; callbacks fill it in."""
    refs = [r for r in (runs or "").split(",") if r.strip()][:MAX_RUNS]
    return html.Div(
        [
            dcc.Store(id="compare-runs", data=refs),
            card(
                "Metrics",
                html.Div(
                    [
                        log_y_toggle("compare-logy"),
                        html.Span("smoothing", className="control-label"),
                        html.Div(
                            dcc.Slider(
                                id="compare-smoothing",
                                min=0,
                                max=0.95,
                                step=0.05,
                                value=0,
                                marks={0: "0", 0.5: "0.5", 0.95: "0.95"},
                            ),
                            style={"width": "240px", "display": "inline-block"},
                        ),
                    ],
                    className="controls",
                ),
                dcc.Graph(id="compare-metrics", config={"displaylogo": False}),
            ),
            card("Final and best", html.Div(id="compare-table")),
            card("Settings that differ", html.Div(id="compare-settings")),
            card("First divergence", html.Div(id="compare-divergence")),
        ],
        className="compare-page",
    )


def _resolve(ctx: AppContext, refs: list[str]) -> tuple[list[RunCache], str | None]:
    """The runs behind the URL's references, or why they cannot be compared."""
    if len(refs) < 2:
        return [], "Pick two or more runs on the runs list, or list them: /compare?runs=a,b"
    found = []
    for ref in refs:
        try:
            found.append(ctx.run(ref))
        except tracer.GradtraceError as e:
            return [], str(e)
    return found, None


def _label(rc: RunCache) -> str:
    return f"{rc.view.name} ({rc.id[:8]})"


def summary_table(found: list[RunCache]) -> html.Table:
    """Per run: status, steps, duration, then each metric's final and best (at step)."""
    frames = [metric_series(rc.view) for rc in found]
    names: list[str] = []
    for m in frames:
        names += [c for c in m if c not in names]
    head = ["run", "status", "steps", "duration"]
    for n in names:
        head += [f"{n} final", f"{n} best"]
    rows = []
    for rc, m in zip(found, frames, strict=True):
        s = rc.summary()
        cells: list[Any] = [
            dcc.Link(_label(rc), href=f"/run/{rc.id}"),
            s["status"],
            str(s["steps"]),
            duration(s["duration_s"]),
        ]
        sides = {side.name: side for side in metric_sides(m, m, 0.0, 0.0)}
        for n in names:
            side = sides.get(n)
            if side is None:
                cells += ["-", "-"]
            else:
                cells += [number(side.final_a), f"{number(side.best_a)} @ {side.best_step_a}"]
        rows.append(html.Tr([html.Td(c) for c in cells]))
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
        id="compare-summary",
        className="table",
    )


def settings_table(found: list[RunCache]) -> Any:
    """The settings (config, seed, model, optimizer, capture, status, versions) that
    are not the same in every run."""
    per_run = [dict(settings_of(rc.view, SETTINGS)) for rc in found]
    keys: list[str] = []
    for s in per_run:
        keys += [k for k in s if k not in keys]
    differ = [
        k
        for k in keys
        if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in per_run}) > 1
    ]
    if not differ:
        return message("Every setting is the same: config, seed, model, optimizer, capture.")
    head = html.Tr([html.Th("setting")] + [html.Th(_label(rc)) for rc in found])
    body = [html.Tr([html.Td(k)] + [html.Td(_show(s.get(k))) for s in per_run]) for k in differ]
    return html.Table([html.Thead(head), html.Tbody(body)], id="compare-diff", className="table")


def _show(v: Any) -> str:
    if v is None:
        return "-"
    return json.dumps(v, default=str) if isinstance(v, dict | list) else str(v)


def node_href(run_id: str, step: int, node: int | None = None) -> str:
    """The run page at a step (and node): ``/run/<id>?step=N&node=M``."""
    href = f"/run/{quote(run_id)}?step={step}"
    return href if node is None else f"{href}&node={node}"


def divergence(d: RunDiff) -> list[Any]:
    """The first-divergence result as text and links into both runs' pages."""
    if d.identical:
        last = d.last_common_step
        return [
            message(f"Identical through step {last} ({d.common_steps} common steps, bit-exact).")
        ]
    out: list[Any] = []
    if d.shape is not None:
        s = d.shape
        where = (
            "in one run only" if s.node is None else f"at node {s.node} ({s.op_a!r} vs {s.op_b!r})"
        )
        out.append(html.P(f"The graph shapes differ: shape {s.index} {where}."))
    if d.first_param_step is not None:
        p = d.param
        out.append(
            html.P(
                f"Parameters first differ at step {p.step}: {p.name} {p.a!r} vs {p.b!r}.",
                id="compare-first-param",
            )
        )
        if d.update is not None:
            u = d.update
            out.append(html.P(f"Step {u.step}'s update: lr {u.lr_a!r} vs {u.lr_b!r}."))
    for what, n in (("value", d.node_value), ("gradient", d.node_grad)):
        if n is None:
            continue
        links = [
            dcc.Link(f"step {n.step}, node {n.node} in {name}", href=node_href(rid, n.step, n.node))
            for name, rid in ((d.a_name, d.a_id), (d.b_name, d.b_id))
        ]
        out.append(
            html.P(
                [
                    f"First {what} to differ: node {n.node} (op {n.op or 'leaf'!r}) "
                    f"{n.a!r} vs {n.b!r}. Open ",
                    links[0],
                    " or ",
                    links[1],
                    ".",
                ],
                className=f"compare-node-{what}",
            )
        )
    if d.first_trace_step is not None and d.node_value is None and d.node_grad is None:
        step = d.first_trace_step
        out.append(html.P(["Node traces first differ at step ", str(step), ": ",
                           dcc.Link("A", href=node_href(d.a_id, step)), " / ",
                           dcc.Link("B", href=node_href(d.b_id, step))]))  # fmt: skip
    return out or [message("The runs part only in their metrics or settings.")]


def register(app: Dash, ctx: AppContext) -> None:
    """Add the page and its callbacks to ``app``."""
    dash.register_page(
        __name__, path="/compare", name="Compare", title="gradtrace · compare", layout=layout
    )

    @app.callback(
        Output("compare-metrics", "figure"),
        Input("compare-runs", "data"),
        Input("compare-logy", "value"),
        Input("compare-smoothing", "value"),
    )
    def metrics(refs: list[str] | None, logy: list[str] | None, smoothing: float | None):
        """Small multiples of every metric, runs overlaid."""
        found, problem = _resolve(ctx, refs or [])
        if problem is not None:
            raise PreventUpdate
        pairs = [(_label(rc), rc.metrics()) for rc in found]
        return compare_figure(pairs, float(smoothing or 0.0), "log" in (logy or []))

    @app.callback(
        Output("compare-table", "children"),
        Output("compare-settings", "children"),
        Output("compare-divergence", "children"),
        Input("compare-runs", "data"),
    )
    def details(refs: list[str] | None):
        """The summary table, the settings diff and (two runs) the first divergence."""
        found, problem = _resolve(ctx, refs or [])
        if problem is not None:
            note = message(problem, "warn", id="compare-problem")
            return note, None, None
        if len(found) == 2:
            first = divergence(ctx.store.diff(found[0].id, found[1].id))
        else:
            first = [message("Pick exactly two runs to find where they part.")]
        return summary_table(found), settings_table(found), first
