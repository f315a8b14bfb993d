"""Training health from the recorded run: dead ReLUs, saturated tanh, stalled weights.

python -m pytest tests/test_health.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from gradtrace.engine import MLP, make_moons
from gradtrace.tracer.analysis import health
from gradtrace.tracer.recording.demo import train
from helpers.health import DEAD, DYING_STEPS, SATURATED, dying_run, saturating_run

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


def test_stalled_weights_are_those_far_below_the_runs_own_scale(moons):
    table = health.stalled(moons, last=4, ratio=1e-2)
    grads = moons.param_arrays(which="grad").iloc[-4:].abs().max()
    values = moons.param_arrays(which="data").iloc[-4:]
    moved = values.diff().abs().max()
    g_scale, u_scale = float(np.median(grads)), float(np.median(moved))
    assert table.attrs["grad_scale"] == g_scale and table.attrs["update_scale"] == u_scale
    expected = sorted(
        n for n in grads.index if grads[n] < 1e-2 * g_scale and moved[n] < 1e-2 * u_scale
    )
    assert sorted(table.loc[table["stalled"], "name"]) == expected
    assert len(expected) > 0
    assert table["stalled"].iloc[0]  # stalled rows first
    for bad in ({"last": 1}, {"ratio": 0}, {"ratio": 2.0}):
        with pytest.raises(tracer.InvalidArgument, match=next(iter(bad))):
            health.stalled(moons, **bad)


def dead_params(run) -> set[str]:
    """What a dead neuron stops: its own weights and bias, and the next layer's
    weights that multiply its output (always 0): by construction, from ``DEAD``."""
    p = run.parameters()
    own = p["layer"].eq(0) & p["neuron"].isin([n for _, n in DEAD])
    fed = p["layer"].eq(1) & p["kind"].eq("weight") & p["input"].isin([n for _, n in DEAD])
    return set(p.loc[own | fed, "name"])


@pytest.mark.parametrize("scale", [1.0, 1e-6])
def test_stalled_names_what_dead_neurons_stop_even_when_every_gradient_is_small(db_url, scale):
    # scale 1e-6: every gradient of the run is below 1e-3 (a converged run's look,
    # where an absolute threshold flags every weight); the scale moves with them
    run_id = dying_run(db_url, loss_scale=scale)
    run = tracer.connect(db_url, readonly=True).run(run_id)
    table = health.stalled(run, last=6)
    assert set(table.loc[table["stalled"], "name"]) == dead_params(run)
    if scale < 1:
        assert (table["max_abs_grad"] < 1e-3).all()


def test_neurons_name_the_dead_and_the_step_they_died(db_url):
    run_id = dying_run(db_url)
    run = tracer.connect(db_url, readonly=True).run(run_id)
    table = run.health()
    bad = table[table["state"] != "ok"]
    found = {(int(r.layer), int(r.neuron)): (r.state, int(r.since)) for r in bad.itertuples()}
    assert found == {key: ("dead", at) for key, at in DEAD.items()}
    assert table.loc[table["state"] == "ok", "since"].isna().all()
    assert len(table) == 6 and (table["examples"] == 20).all()
    # the step before it died, the neuron still answered some example
    before = health.units(run, DEAD[(0, 4)] - 1).set_index(["layer", "neuron"])
    assert before.loc[(0, 4), "zero"] < before.loc[(0, 4), "examples"]


def test_saturated_tanh_neuron_named_with_the_step_it_saturated(db_url):
    run_id = saturating_run(db_url)
    run = tracer.connect(db_url, readonly=True).run(run_id)
    bad = health.neurons(run).query("state != 'ok'")
    found = {(int(r.layer), int(r.neuron)): (r.state, int(r.since)) for r in bad.itertuples()}
    assert found == {key: ("saturated", at) for key, at in SATURATED.items()}


def test_bisecting_between_samples_finds_the_step_reading_every_step_finds(tmp_path):
    db = str(tmp_path / "d.db")
    run_id = dying_run(db, steps=DYING_STEPS)
    run = tracer.connect(db, readonly=True).run(run_id)
    reads = []
    real = health.units

    def counted(run, step):
        reads.append(step)
        return real(run, step)

    every = health.neurons(run, samples=DYING_STEPS)
    health.units = counted
    try:
        few = health.neurons(run, samples=2)
    finally:
        health.units = real
    assert few["since"].tolist() == every["since"].tolist()
    assert len(set(reads)) < DYING_STEPS  # it did bisect, not read every step
    with pytest.raises(tracer.InvalidArgument, match="samples"):
        health.neurons(run, samples=1)


def test_health_section_draws_the_counts_of_the_query_api(moons):
    from gradtrace.dashboard import create_app
    from helpers.dash import call

    app = create_app(MOONS_DB["db"])
    meta = {"traced": True, "capture": "all"}
    resp = call(
        app, "run-h-units.figure", {"run-meta.data": meta, "run-id.data": moons.id}, "run-meta.data"
    )
    table = health.neurons(moons)
    dead = int((table["state"] == "dead").sum())
    assert dead > 0
    assert resp["run-h-flags"]["children"].startswith(f"{dead} dead, 0 saturated neurons")
    badge = resp["run-sum-health"]["children"]  # the header's badge links down to the list
    assert badge["props"]["children"].startswith(f"{dead} dead · 0 saturated")
    assert "health-bad" in badge["props"]["className"]
    listed = str(resp["run-h-neurons"]["children"])
    for r in table[table["state"] == "dead"].itertuples():
        assert f"layer {r.layer} · neuron {r.neuron}" in listed
        assert f"since step {r.since}" in listed
    stalled = health.stalled(moons, last=STEPS)
    rows = resp["run-h-stalled"]["rowData"]
    assert sorted(r["name"] for r in rows) == sorted(stalled.loc[stalled["stalled"], "name"])
    lines = {t["name"]: t for t in resp["run-h-units"]["figure"]["data"]}
    layers = health.layers(moons)
    layer0 = layers[layers["layer"] == 0]
    assert lines["layer 0 dead"]["y"] == pytest.approx(layer0["dead_fraction"].tolist())
