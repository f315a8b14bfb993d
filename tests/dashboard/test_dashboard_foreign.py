"""The dashboard on a run recorded from micrograd: the run page and its graph view."""

from __future__ import annotations

import random

import pytest
from gradtrace.dashboard import create_app
from helpers.dash import call, find

from gradtrace import tracer

mg_nn = pytest.importorskip("micrograd.nn")


class Halve:
    """A node of the user's own engine with an op gradtrace does not know."""

    def __init__(self, x):
        self.data, self.grad, self._prev, self._op, self.label = x.data / 2, 1.0, {x}, "halve", ""


def test_run_page_and_graph_view_of_a_micrograd_run(tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    random.seed(3)
    model = mg_nn.MLP(2, [3, 1])
    with tracer.record("mg", db=db) as run:
        run.watch(model)
        for _ in range(3):
            loss = sum((model(x) - y) ** 2 for x, y in (([1.0, -2.0], 1.0), ([0.5, 0.5], -1.0)))
            model.zero_grad()
            loss.backward()
            run.log(Halve(loss))
            for p in model.parameters():
                p.data -= 0.05 * p.grad
    view = tracer.connect(db).run("mg")
    root = len(view.nodes(0)) - 1
    app = create_app(db)
    path = {"_pages_location.pathname": f"/run/{view.id}", "_pages_location.search": ""}
    tree = call(app, "_pages_content.children", path, "_pages_location.pathname")
    tree = tree["_pages_content"]["children"]
    assert find(tree, "run-loss")["props"]["figure"]["data"][0]["x"] == [0, 1, 2]
    go = {
        "run-below-go.data": find(tree, "run-id")["props"]["data"],
        "run-below-args.data": find(tree, "run-below-args")["props"]["data"],
    }
    below = call(app, "run-below.children", go, "run-below-go.data")["run-below"]["children"]
    meta = find(below, "run-meta")["props"]["data"]
    assert meta["traced"] is True and meta["n_params"] == 13
    values = {
        "run-slider.value": 2,
        "run-meta.data": meta,
        "run-id.data": view.id,
        "run-g-mode.value": "node",
        "run-g-node.value": root,
    }
    elements = call(app, "run-cyto.elements", values, "run-slider.value")["run-cyto"]["elements"]
    nodes = {e["data"]["id"]: e["data"] for e in elements if "source" not in e["data"]}
    assert nodes[str(root)]["op"] == "halve" and nodes[str(root)]["name"] == "halve"
