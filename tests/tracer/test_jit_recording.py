"""Recording a jit step: the same program, eager and replayed, stores the same bits.

Each test with ``db_url`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradtrace.engine import MLP, SGD, Value, hinge, jit, l2, make_moons
from gradtrace.tracer.recording.jitcapture import JitShape
from helpers.trace import bits

from gradtrace import tracer

SIZES = [20, 20, 10, 20, 20]  # minibatch sizes: two graph shapes, A A B A A


def values_of(tree):
    if isinstance(tree, list):
        return [values_of(x) for x in tree]
    return Value(float(tree))


def program(model):
    def loss(X, y):
        scores = [model(x) for x in X]
        return hinge(scores, y) + l2(model.parameters(), 1e-3)

    return loss


def record_moons(db_url: str, name: str, jitted: bool) -> str:
    X, y = make_moons(20, noise=0.1, seed=4)
    model = MLP(2, [6, 6, 1], seed=5)
    opt = SGD(model.parameters(), lr=0.3)
    fn = jit(program(model), check_every=3) if jitted else program(model)
    with tracer.record(name, db=db_url) as run:
        run.watch(model, optimizer=opt)
        for n in SIZES:
            args = (X[:n], y[:n])
            loss = fn(*args) if jitted else fn(*map(values_of, args))
            model.zero_grad()
            loss.backward()
            run.log(loss, acc=loss)  # a Replay is a metric value too
            opt.step()
        if jitted:
            assert all(isinstance(s, JitShape) for s in run.graphs.shapes)
    return run.id


def test_eager_and_jit_runs_store_the_same_bits(db_url):
    eager = record_moons(db_url, "eager", jitted=False)
    replayed = record_moons(db_url, "jit", jitted=True)
    with tracer.connect(db_url, readonly=True) as store:
        a, b = store.run(eager), store.run(replayed)
        keys = [run.steps()["graph_key"].tolist() for run in (a, b)]
        for k in range(len(SIZES)):
            na, nb = a.nodes(k), b.nodes(k)
            assert len(na) == len(nb) > 100
            assert (bits(na["value"]) == bits(nb["value"])).all(), f"values, step {k}"
            assert (bits(na["grad"]) == bits(nb["grad"])).all(), f"grads, step {k}"
            ga, gb = a.graph(k), b.graph(k)
            for column in ("op", "a", "b", "label", "param", "kind"):
                assert ga[column].fillna(-1).tolist() == gb[column].fillna(-1).tolist(), column
        ua, ub = a.updates(), b.updates()
        for column in ("value_before", "grad", "value_after", "lr"):
            assert (bits(ua[column]) == bits(ub[column])).all(), column
        ma, mb = a.metrics(), b.metrics()
        assert (bits(ma["loss"]) == bits(mb["loss"])).all()
        assert (bits(mb["acc"]) == bits(mb["loss"])).all()
        result = b.verify()
        assert result.ok and result.steps == len(SIZES), result
        assert store.diff(eager, replayed).identical
    for run_keys in keys:  # one stored graph per shape, reused by identity
        assert run_keys[0] == run_keys[1] == run_keys[3] == run_keys[4] != run_keys[2]


def test_forensics_name_the_same_first_nan_in_both_runs(db_url):
    ids = []
    for jitted in (False, True):
        w = Value(0.5, kind="parameter", label="w")

        def loss(x, w=w):
            return (x * w).log() * 2.0 + w * w

        fn = jit(loss) if jitted else loss
        with tracer.record(f"nan-{jitted}", db=db_url) as run, pytest.warns(RuntimeWarning):
            run.watch([w])
            for x in (2.0, 1.0, -1.0, 3.0):  # log of a negative number at step 2
                root = fn(x) if jitted else fn(Value(x))
                w.grad = 0.0
                root.backward()
                run.log(root)
                w.data -= 0.01 * w.grad
        ids.append(run.id)
    with tracer.connect(db_url, readonly=True) as store:
        eager, replayed = (store.run(i).first_nonfinite() for i in ids)
    assert (replayed.step, replayed.kind, replayed.node, replayed.op) == (2, "forward", 3, "log")
    assert (eager.step, eager.kind, eager.node, eager.op, eager.parents) == (
        replayed.step,
        replayed.kind,
        replayed.node,
        replayed.op,
        replayed.parents,
    )
    assert math.isnan(replayed.value)


def test_log_before_backward_stores_the_gradients_eager_nodes_hold(tmp_path):
    w = Value(0.5, kind="parameter")
    w.grad = 0.25  # left over: logged as it is, the inner nodes' are zero
    fn = jit(lambda x: (x * w).tanh() + 1.0)
    with tracer.record("early", db=str(tmp_path / "r.db")) as run:
        run.watch([w])
        run.log(fn(3.0))
        root = fn(3.0)
        run.log(root)
    with tracer.connect(str(tmp_path / "r.db"), readonly=True) as store:
        view = store.run("early")
        grads = [view.nodes(k)["grad"].tolist() for k in (0, 1)]
        graph = view.graph(1)
    assert grads[0] == grads[1] == [0.25 if p == 0 else 0.0 for p in graph["param"].fillna(-1)]


@pytest.mark.parametrize(
    ("data", "grad", "first"),
    [
        ([1.0, 2.0, 3.0], [0.0, -0.0, 5e-324], None),
        ([1e308, 1e308, 1.0], [0.0, 0.0, 0.0], None),  # the sum overflows; every node is finite
        ([1.0, math.inf, -math.inf], [0.0, 0.0, 0.0], 1),
        ([1.0, 2.0, 3.0], [0.0, 0.0, math.nan], 2),
    ],
)
@pytest.mark.filterwarnings("error")  # an overflowing sum is not the user's warning
def test_first_nonfinite_node_of_a_replay(data, grad, first):
    from gradtrace.tracer.recording.jitcapture import _first_nonfinite

    assert _first_nonfinite(np.array(data), np.array(grad)) == first
