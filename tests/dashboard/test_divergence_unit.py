"""The run page's divergence pieces without a browser: a readable neighbourhood
(fan-out and long sums folded into counts), the loss chart's log axis and onset
marker, the health badge's verdict.

    python -m pytest tests/dashboard/test_divergence_unit.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from gradtrace.dashboard import create_app, curvefigures, graphs, graphview
from gradtrace.dashboard.divergence import auto_log
from gradtrace.dashboard.run.health import verdict
from helpers.dash import call, diverging_run, find

from gradtrace import tracer


@pytest.fixture(scope="module")
def diverged(tmp_path_factory) -> tuple[str, str]:
    db = str(tmp_path_factory.mktemp("div") / "div.db")
    return db, diverging_run(db)


def graph(db: str, run_id: str, step: int):
    nodes = tracer.connect(db, readonly=True).run(run_id).nodes(step)
    return nodes, graphs.children_index(nodes), nodes["op"].to_numpy(dtype=object)


def test_a_weight_used_by_every_example_is_folded_into_a_count(diverged):
    nodes, children, ops = graph(*diverged, 4)
    weight = int(np.flatnonzero(nodes["param"].notna().to_numpy())[0])
    uses = children.of(weight).tolist()
    center = uses[0]
    assert len(uses) == 20 and len(graphs.neighbourhood(children, center)) > graphs.READABLE
    shown, folded = graphs.readable_neighbourhood(children, ops, center)
    assert shown[0] == center and len(shown) + len(folded) <= graphs.READABLE
    fold = next(f for f in folded if f.node == weight)
    drawn = [u for u in uses if u in shown]
    assert fold.kind == "children" and fold.count == len(uses) - len(drawn)
    assert 0 < len(drawn) <= graphs.FANOUT
    names = [f"p{i}" for i in range(int(nodes["param"].max()) + 1)]
    elements = graphview.cyto_elements(nodes, children, shown, names, [center], folded, center)
    boxes = [e for e in elements if "folded" in e["data"]]
    assert [b["data"]["label"] for b in boxes if b["data"]["of"] == weight] == [
        f"+{fold.count} more\nchildren"
    ]
    assert [e["data"]["id"] for e in elements if e.get("selected")] == [str(center)]


def test_the_earlier_terms_of_a_long_sum_are_one_count(diverged):
    nodes, children, ops = graph(*diverged, 4)
    # the loss: ((0 + e0) + e1) + ... + e19, then * (1/20): its last + holds the sum
    last_add = int(children.a[len(nodes) - 1])
    assert ops[last_add] == "+"
    chain, p = 0, last_add
    while ops[int(children.a[p])] == "+":  # the sum's earlier + nodes, counted by hand
        p, chain = int(children.a[p]), chain + 1
    shown, folded = graphs.readable_neighbourhood(children, ops, last_add, depth=1)
    fold = next(f for f in folded if f.kind == "sum")
    drawn_adds = [s for s in shown if s != last_add and ops[s] == "+" and s < last_add]
    assert fold.count == chain - len(drawn_adds)
    assert fold.count > 10


def test_the_loss_opens_on_a_log_axis_with_the_onset_marked(diverged):
    db, run_id = diverged
    run = tracer.connect(db, readonly=True).run(run_id)
    loss = run.metrics()["loss"]
    assert auto_log(loss)
    assert auto_log([1.0, 1.5e3]) and not auto_log([1.0, 999.0, np.nan, np.inf, 0.0, -5.0])
    went = run.onset(until=run.first_nonfinite().step)
    fig = curvefigures.loss_figure(run.metrics(), 0.6, True, 3, onset=(went.step, went.story))
    mark = next(t for t in fig["data"] if t["name"] == "onset")
    assert mark["x"] == [went.step, went.step] and mark["yaxis"] == "y91"
    assert fig["layout"]["yaxis91"]["range"] == [0, 1]
    values = {"_pages_location.pathname": f"/run/{run_id}", "_pages_location.search": ""}
    resp = call(create_app(db), "_pages_content.children", values, "_pages_location.pathname")
    tree = resp["_pages_content"]["children"]
    assert find(tree, "run-logy")["props"]["value"] == ["log"]
    assert find(tree, "run-story-onset")["props"]["children"] == went.story


@pytest.mark.parametrize(
    "args, words, cls",
    [
        ((True, 0, 0, 0), "diverged · 0 dead · 0 saturated · 0 stalled", "health-bad"),
        ((False, 2, 0, 3), "2 dead · 0 saturated · 3 stalled", "health-bad"),
        ((False, 0, 1, 0), "0 dead · 1 saturated · 0 stalled", "health-bad"),
        ((False, 0, 0, 4), "0 dead · 0 saturated · 4 stalled", "health-warn"),
        ((False, None, None, 0), "healthy · 0 stalled", "health-ok"),
        ((False, 0, 0, 0), "healthy · 0 dead · 0 saturated · 0 stalled", "health-ok"),
    ],
)
def test_the_badge_is_red_when_the_run_diverged_or_a_neuron_is_lost(args, words, cls):
    assert verdict(*args) == (words, cls)
