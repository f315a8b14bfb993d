"""Shared test helpers."""

from __future__ import annotations

import warnings

import numpy as np
from gradtrace.engine import MLP, SGD, Value, make_moons

from gradtrace import tracer


def call(app, output: str, values: dict, changed: str, side: bool = False) -> dict | None:
    """Call the callback writing ``output`` as the browser does; its response or None.
    With ``side``, the props it set on other components (``set_props``) as well, by
    component id, beside the outputs."""
    client = app.server.test_client()
    client.get("/")  # registers the callbacks
    key = next(
        k
        for k in app.callback_map
        if output in [o.split("@")[0] for o in k.strip(".").split("...")]
    )
    spec = app.callback_map[key]
    outs = [
        {"id": o.split(".")[0], "property": o.split(".")[1].split("@")[0]}
        for o in key.strip(".").split("...")
    ]

    def dep(d):
        return {**d, "value": values.get(f"{d['id']}.{d['property']}")}

    body = {
        "output": key,
        "outputs": outs if len(outs) > 1 else outs[0],
        "inputs": [dep(d) for d in spec["inputs"]],
        "state": [dep(d) for d in spec["state"]],
        "changedPropIds": [changed],
    }
    resp = client.post("/_dash-update-component", json=body)
    assert resp.status_code in (200, 204), resp.data[:300]
    if resp.status_code != 200:
        return None
    if side:
        return {**resp.json.get("sideUpdate", {}), **resp.json["response"]}
    return resp.json["response"]


def find(tree, component_id: str) -> dict | None:
    """The component with ``component_id`` in a rendered layout."""
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == component_id:
            return tree
        return find(tree.get("props", {}).get("children"), component_id) or next(
            (f for v in tree.get("props", {}).values() if (f := find(v, component_id))), None
        )
    if isinstance(tree, list):
        return next((f for t in tree if (f := find(t, component_id))), None)
    return None


def scalar_score(spec: dict, values: np.ndarray, x: float, y: float) -> float:
    """The engine's own forward pass at one point (no grid, no numpy)."""
    model = MLP.from_spec(spec)
    model.load_parameters(values.tolist())
    return model([Value(x), Value(y)]).data


STEPS = 12


def diverging_run(db: str, steps: int = STEPS) -> str:
    """A 2-input tanh MLP trained with lr=1e40: its loss runs 1e79, 1e159, 1e241,
    inf, then NaN; its weights pass 1e200 before turning NaN."""
    X, y = make_moons(20, noise=0.1, seed=1)
    model = MLP(2, [4, 1], activation="tanh", seed=1)
    opt = SGD(model.parameters(), lr=1e40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recorder warns at the first NaN
        with tracer.record("diverging", db) as run:
            run.watch(model, optimizer=opt)
            for _ in range(steps):
                preds = [model([Value(a), Value(b)]) for a, b in X]
                loss = sum(((p - t) ** 2 for p, t in zip(preds, y)), Value(0.0)) * (1 / len(X))
                model.zero_grad()
                loss.backward()
                run.log(loss, acc=0.5)
                opt.step()
    return run.id
