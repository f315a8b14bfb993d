"""Training health from the recorded run: dead ReLUs, saturated tanh, stalled weights.

python -m pytest tests/test_health.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from gradtrace.engine import MLP, make_moons
from gradtrace.tracer.analysis import health
from gradtrace.tracer.recording.demo import train

from gradtrace import tracer

STEPS = 8


MOONS_DB: dict[str, str] = {}


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("health") / "moons.db")
    run_id = train("moons", STEPS, db, seed=3)
    MOONS_DB["db"] = db
    return tracer.connect(db, readonly=True).run(run_id)


def dead_by_replaying(run, step: int) -> dict[int, set[int]]:
    """Dead ReLU neurons per hidden layer, computed without the node table: the
    engine's model loaded with the recorded weights of ``step`` fed the moons data."""
    spec = run.model_spec
    model = MLP.from_spec(spec)
    model.load_parameters(run.param_arrays(steps=[step], which="data").iloc[0].tolist())
    X, _ = make_moons(100, noise=0.1, seed=3)
    dead: dict[int, set[int]] = {}
    for li, layer in enumerate(model.layers[:-1]):  # the last layer is linear
        outs = []
        for x in X:
            h = x
            for earlier in model.layers[:li]:
                h = [n.predict(h) for n in earlier.neurons]
            outs.append([n.predict(h) for n in layer.neurons])
        zero = (np.array(outs) == 0.0).all(axis=0)
        dead[li] = set(np.flatnonzero(zero).tolist())
    return dead


def test_dead_neurons_match_the_engine_replaying_the_recorded_weights(moons):
    for step in (0, STEPS - 1):
        units = health.units(moons, step)
        found = {
            int(layer): set(g.loc[g["dead"], "neuron"].tolist())
            for layer, g in units.groupby("layer")
        }
        expected = dead_by_replaying(moons, step)
        assert found == expected, step
        assert (units["examples"] == 100).all()  # one output per training example
    at_end = health.units(moons, STEPS - 1)
    assert at_end["dead"].sum() > 0  # this seed kills some: the test compares something
    layers = health.layers(moons, steps=[STEPS - 1])
    assert layers["dead"].tolist() == at_end.groupby("layer")["dead"].sum().tolist()
    assert layers["dead_fraction"].tolist() == pytest.approx(
        (at_end.groupby("layer")["dead"].mean()).tolist()
    )


def test_saturated_tanh_counts_outputs_beyond_the_threshold(tmp_path):
    run_id = train("toy", 3, str(tmp_path / "toy.db"), seed=3)
    run = tracer.connect(str(tmp_path / "toy.db"), readonly=True).run(run_id)
    u = health.units(run, 2)
    assert set(u["activation"]) == {"tanh"} and (u["examples"] == 4).all()
    nodes = run.nodes(2)
    tanh = nodes.loc[nodes["op"] == "tanh", "value"].to_numpy()
    # every tanh of the toy MLP belongs to a neuron: the totals agree with nodes()
    assert u["examples"].sum() == len(tanh)
    assert u["saturated"].sum() == int((np.abs(tanh) > health.SATURATED).sum())


def test_stalled_weights_are_those_whose_grad_and_update_stay_small(moons):
    table = health.stalled(moons, last=4, threshold=1e-3)
    grads = moons.param_arrays(which="grad").iloc[-4:].abs().max()
    values = moons.param_arrays(which="data").iloc[-4:]
    moved = values.diff().abs().max()
    expected = sorted(n for n in grads.index if grads[n] < 1e-3 and moved[n] < 1e-3)
    assert sorted(table.loc[table["stalled"], "name"]) == expected
    assert len(expected) > 0
    assert table["stalled"].iloc[0]  # stalled rows first
    with pytest.raises(ValueError, match="last"):
        health.stalled(moons, last=1)


def test_health_section_draws_the_counts_of_the_query_api(moons):
    from gradtrace.dashboard import create_app
    from helpers.dash import call

    app = create_app(MOONS_DB["db"])
    meta = {"id": moons.id, "traced": True, "capture": "all"}
    resp = call(app, "run-h-units.figure", {"run-meta.data": meta}, "run-meta.data")
    last = moons.traced_steps()[-1]
    dead = int(health.units(moons, last)["dead"].sum())
    assert resp["run-h-flags"]["children"].startswith(f"{dead} dead ReLU neurons")
    strip = resp["run-sum-health"]["children"]  # the summary's flags link down to the panels
    assert strip[0]["props"]["children"] == f"{dead} dead"
    assert strip[0]["props"]["href"] == "#run-h-units"
    stalled = health.stalled(moons, last=STEPS)
    rows = resp["run-h-stalled"]["rowData"]
    assert sorted(r["name"] for r in rows) == sorted(stalled.loc[stalled["stalled"], "name"])
    lines = {t["name"]: t for t in resp["run-h-units"]["figure"]["data"]}
    layers = health.layers(moons)
    layer0 = layers[layers["layer"] == 0]
    assert lines["layer 0 dead"]["y"] == pytest.approx(layer0["dead_fraction"].tolist())
