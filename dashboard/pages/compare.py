"""The compare page (``/compare?runs=id1,id2,...``): what changed between runs.

Every metric as its own chart with the runs overlaid, loss first (log y, smoothing,
a y range no diverged run can blow up), a table of final and best values and
durations, the settings that differ (logged schedules such as lr included, with
the step where they first part), and for exactly two runs the first divergence
with links to that step and node on each run's page. Reached from the runs list's
selection; the URL carries the runs (ids, id prefixes or names), log y and
smoothing (``&logy=1&smooth=0.6``), so a comparison can be shared.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import dash
from dash import ClientsideFunction, Dash, Input, Output, dcc, html
from gradtrace.dashboard.comparefigs import compare_figures, run_colours
from gradtrace.dashboard.comparetables import exact, settings_table, summary_table
from gradtrace.dashboard.context import AppContext, RunCache
from gradtrace.dashboard.ui import card, log_y_toggle, message
from gradtrace.tracer.report import RunDiff

from gradtrace import tracer

MAX_RUNS = 10
SMOOTHING_MAX = 0.95


def _smoothing(text: str | None) -> float:
    try:
        s = float(text) if text else 0.0
    except ValueError:
        return 0.0
    return min(max(s, 0.0), SMOOTHING_MAX) if s == s else 0.0  # NaN: none


def layout(
    runs: str | None = None, logy: str | None = None, smooth: str | None = None, **_: Any
) -> html.Div:
    """The page skeleton for the runs in the URL; callbacks fill it in."""
    refs = [r.strip() for r in (runs or "").split(",") if r.strip()][:MAX_RUNS]
    toggle = log_y_toggle("compare-logy")
    toggle.value = ["log"] if logy in ("1", "true", "log") else []
    return html.Div(
        [
            dcc.Store(id="compare-runs", data=refs),
            dcc.Store(id="compare-url-written"),
            html.Div(id="compare-problem"),
            card(
                "Metrics",
                html.Div(
                    [
                        toggle,
                        html.Span("smoothing", className="control-label"),
                        html.Div(
                            dcc.Slider(
                                id="compare-smoothing",
                                min=0,
                                max=SMOOTHING_MAX,
                                step=0.05,
                                value=_smoothing(smooth),
                                marks={0: "0", 0.5: "0.5", SMOOTHING_MAX: "0.95"},
                            ),
                            className="smooth-slider",
                        ),
                    ],
                    className="controls",
                ),
                html.Div(id="compare-metrics", className="compare-metrics"),
            ),
            card("Final and best", html.Div(id="compare-table", className="table-scroll")),
            card("Settings that differ", html.Div(id="compare-settings", className="table-scroll")),
            card("First divergence", html.Div(id="compare-divergence")),
        ],
        className="compare-page",
    )


def resolve(ctx: AppContext, refs: list[str]) -> tuple[list[RunCache], list[str]]:
    """The runs behind the URL's references (each once, in order) and, for every
    reference that names no run, why: one bad id must not hide the others."""
    found: list[RunCache] = []
    problems: list[str] = []
    for ref in refs:
        try:
            rc = ctx.run(ref)
        except tracer.GradtraceError as e:
            problems.append(str(e))
            continue
        if all(rc.id != f.id for f in found):
            found.append(rc)
    return found, problems


def label(rc: RunCache) -> str:
    return f"{rc.view.name} ({rc.id[:8]})"


def colours_of(ctx: AppContext, found: list[RunCache]) -> dict[str, str]:
    """The runs' colours, as the runs list gives them (by age in the database)."""
    return run_colours([rc.id for rc in found], by_age=ctx.store.runs()["id"].tolist()[::-1])


def legend(found: list[RunCache], colours: dict[str, str]) -> html.Div:
    """One legend for every chart: a swatch and the run's name, linking to its page."""
    return html.Div(
        [
            html.Span(
                [
                    html.Span(className="swatch", style={"background": colours[rc.id]}),
                    dcc.Link(label(rc), href=f"/run/{quote(rc.id)}"),
                ],
                className="legend-item",
            )
            for rc in found
        ],
        className="compare-legend",
        id="compare-legend",
    )


def problem_note(found: list[RunCache], problems: list[str], asked: int) -> Any:
    """What is wrong with the URL's runs, and what to do; None when nothing is."""
    if not asked:
        return message(
            "No runs to compare: tick two or more on the runs list, or list them in the "
            "address: /compare?runs=<id or name>,<id or name>",
            "info",
            id="compare-empty",
        )
    lines: list[Any] = [html.Div(p) for p in problems]
    if problems:
        lines.insert(0, html.Strong(f"{len(problems)} of {asked} runs not found:"))
    if len(found) == 1:
        lines.append(html.Div("Only one run to compare: add another to the address."))
    if not lines:
        return None
    lines.append(dcc.Link("← pick runs on the runs list", href="/", className="run-link"))
    return html.Div(lines, className="notice notice-warn", id="compare-bad")


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
                [f"Parameters first differ at step {p.step}: {p.name} ", *exact(p.a, p.b), "."],
                id="compare-first-param",
            )
        )
        if d.update is not None:
            u = d.update
            out.append(html.P([f"Step {u.step}'s update: lr ", *exact(u.lr_a, u.lr_b), "."]))
    for what, n in (("value", d.node_value), ("gradient", d.node_grad)):
        if n is None:
            continue
        links = [
            dcc.Link(f"step {n.step}, node {n.node} in {name}", href=node_href(rid, n.step, n.node))
            for name, rid in ((d.a_name, d.a_id), (d.b_name, d.b_id))
        ]
        out.append(
            html.P(
                [f"First {what} to differ: {n.name()} ", *exact(n.a, n.b), ". Open "]
                + [links[0], " or ", links[1], "."],
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
        Output("compare-metrics", "children"),
        Input("compare-runs", "data"),
        Input("compare-logy", "value"),
        Input("compare-smoothing", "value"),
    )
    def metrics(refs: list[str] | None, logy: list[str] | None, smoothing: float | None):
        """One chart per metric, runs overlaid, under one legend."""
        found, _ = resolve(ctx, refs or [])
        if not found:
            return None  # the problem note above says why
        colours = colours_of(ctx, found)
        runs = [(label(rc), rc.metrics(), colours[rc.id]) for rc in found]
        panels = compare_figures(runs, float(smoothing or 0.0), "log" in (logy or []))
        if not panels:
            return message("These runs logged no metrics.", id="compare-no-metrics")
        graphs = [
            dcc.Graph(
                id=f"compare-panel-{i}",
                figure=fig,
                config={"displaylogo": False, "responsive": True},
                className="compare-panel",
            )
            for i, (_, fig) in enumerate(panels)
        ]
        return [legend(found, colours), html.Div(graphs, className="compare-grid")]

    @app.callback(
        Output("compare-problem", "children"),
        Output("compare-table", "children"),
        Output("compare-settings", "children"),
        Output("compare-divergence", "children"),
        Input("compare-runs", "data"),
    )
    def details(refs: list[str] | None):
        """Problems with the URL, the summary table, the settings diff and (two runs)
        the first divergence."""
        found, problems = resolve(ctx, refs or [])
        note = problem_note(found, problems, len(refs or []))
        if not found:
            return note, None, None, None
        runs = ctx.store.runs().set_index("id")["diverged_at_step"]
        diverged = {rc.id: runs.get(rc.id) for rc in found}
        colours = colours_of(ctx, found)
        table = summary_table(found, colours, diverged)
        if len(found) < 2:
            return note, table, message("Settings are compared between two or more runs."), None
        if len(found) == 2:
            first = divergence(ctx.store.diff(found[0].id, found[1].id))
        else:
            first = [message("Pick exactly two runs to find where they part.")]
        return note, table, settings_table(found), first

    app.clientside_callback(
        ClientsideFunction("gtCompare", "address"),
        Output("compare-url-written", "data"),
        Input("compare-logy", "value"),
        Input("compare-smoothing", "value"),
        prevent_initial_call=True,
    )
