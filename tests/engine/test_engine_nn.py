"""The neural-network side of the engine: MLP, losses, optimizers, data, training.

The two training tests are the lecture's: the 4-sample toy set with a tanh MLP
and mean squared error, and micrograd's moons demo (hinge loss + L2, SGD with a
linearly decaying rate).
"""

from __future__ import annotations

import gc
import json
import math

import pytest
from gradtrace.engine import (
    MLP,
    SGD,
    Adam,
    Layer,
    Neuron,
    Value,
    accuracy,
    binary_cross_entropy,
    constant,
    cosine,
    hinge,
    l2,
    linear_decay,
    make_circles,
    make_moons,
    mse,
    step_decay,
    toy,
)

from gradtrace import engine

# -- MLP --------------------------------------------------------------------------


def test_parameter_count_of_the_moons_model():
    model = MLP(2, [16, 16, 1], seed=0)
    # (2+1)*16 + (16+1)*16 + (16+1)*1
    assert len(model.parameters()) == 337
    assert len(model.layers) == 3
    assert [len(layer.neurons) for layer in model.layers] == [16, 16, 1]


def test_named_parameters_and_labels():
    model = MLP(2, [16, 16, 1], seed=0)
    named = model.named_parameters()
    names = [name for name, _ in named]
    assert len(set(names)) == 337
    assert names[:4] == [
        "layers.0.neurons.0.w.0",
        "layers.0.neurons.0.w.1",
        "layers.0.neurons.0.b",
        "layers.0.neurons.1.w.0",
    ]
    assert names[-1] == "layers.2.neurons.0.b"
    assert "layers.0.neurons.3.w.1" in names
    assert "layers.1.neurons.15.w.15" in names
    assert all(p.label == name for name, p in named)
    assert [p for _, p in named] == model.parameters()
    # the name is the path to the parameter
    assert dict(named)["layers.0.neurons.3.w.1"] is model.layers[0].neurons[3].w[1]
    assert dict(named)["layers.1.neurons.2.b"] is model.layers[1].neurons[2].b


def test_initial_weights_follow_micrograd():
    model = MLP(2, [16, 16, 1], seed=3)
    ws = [w.data for layer in model.layers for n in layer.neurons for w in n.w]
    bs = [n.b.data for layer in model.layers for n in layer.neurons]
    assert all(-1.0 <= w <= 1.0 for w in ws)
    assert len(set(ws)) == len(ws)
    assert bs == [0.0] * 33
    acts = [n.activation for layer in model.layers for n in layer.neurons]
    assert acts == ["relu"] * 32 + ["linear"]


def _weights(model: MLP) -> list[float]:
    return [p.data for p in model.parameters()]


def test_seed_reproducibility():
    assert _weights(MLP(2, [16, 16, 1], seed=1)) == _weights(MLP(2, [16, 16, 1], seed=1))
    assert _weights(MLP(2, [16, 16, 1], seed=1)) != _weights(MLP(2, [16, 16, 1], seed=2))
    assert _weights(MLP(2, [4, 1], seed=None)) != _weights(MLP(2, [4, 1], seed=None))


def test_spec_round_trip():
    model = MLP(3, [4, 4, 1], activation="tanh", seed=7)
    spec = json.loads(json.dumps(model.spec()))
    assert spec == {"type": "MLP", "nin": 3, "nouts": [4, 4, 1], "activation": "tanh", "seed": 7}
    rebuilt = MLP.from_spec(spec)
    assert rebuilt.spec() == model.spec()
    assert _weights(rebuilt) == _weights(model)
    assert [n for n, _ in rebuilt.named_parameters()] == [n for n, _ in model.named_parameters()]
    x = [0.5, -1.0, 2.0]
    assert rebuilt(x).data == model(x).data
    with pytest.raises(ValueError, match="not an MLP spec"):
        MLP.from_spec({"type": "CNN"})


def test_load_parameters():
    model = MLP(2, [3, 1], seed=0)
    values = [0.01 * i - 0.05 for i in range(len(model.parameters()))]
    model.load_parameters(values)
    assert _weights(model) == values
    other = MLP(2, [3, 1], seed=99)
    other.load_parameters(_weights(model))
    assert other([0.3, -0.2]).data == model([0.3, -0.2]).data
    with pytest.raises(ValueError, match="has 13 parameters, got 12"):
        model.load_parameters(values[:-1])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_predict_equals_the_graph(activation):
    model = MLP(2, [16, 16, 1], activation=activation, seed=4)
    X, _ = make_moons(20, noise=0.2, seed=4)
    for x in X:
        assert model.predict(x) == model(x).data
    wide = MLP(2, [3, 2], activation=activation, seed=4)
    assert wide.predict([0.5, 0.1]) == [v.data for v in wide([0.5, 0.1])]


def test_predict_and_graph_both_show_a_nan_weight():
    model = MLP(2, [3, 1], seed=0)
    model.layers[0].neurons[0].w[0].data = math.nan
    for x in ([1.0, 1.0], [-1.0, 0.5]):
        assert math.isnan(model(x).data)
        assert math.isnan(model.predict(x))


def test_model_accepts_values_and_floats_alike():
    model = MLP(2, [4, 1], seed=5)
    assert model([Value(0.5), Value(-0.25)]).data == model([0.5, -0.25]).data


def test_zero_grad():
    model = MLP(2, [4, 1], seed=5)
    model([0.5, -0.25]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    model([0.5, -0.25]).backward()
    opt = SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_bad_shapes_and_activations_are_rejected():
    with pytest.raises(ValueError, match="activation"):
        MLP(2, [1], activation="sigmoid")
    with pytest.raises(ValueError, match="positive"):
        MLP(2, [])
    with pytest.raises(ValueError, match="positive"):
        MLP(0, [1])
    with pytest.raises(ValueError, match="activation"):
        Neuron(2, activation="gelu")
    assert repr(Layer(2, 2, "tanh")) == "Layer of [TanhNeuron(2), TanhNeuron(2)]"


# -- losses -------------------------------------------------------------------------

LOSSES = [
    ("mse", lambda: mse([Value(0.5), Value(-1.0)], [1.0, -1.0]), 0.125),
    (
        "hinge",
        lambda: hinge([Value(0.5), Value(-2.0), Value(0.2)], [1, -1, -1]),
        (0.5 + 0 + 1.2) / 3,
    ),
    (
        "bce",
        lambda: binary_cross_entropy([Value(0.8), Value(0.25)], [1, 0]),
        -(math.log(0.8) + math.log(0.75)) / 2,
    ),
    ("l2", lambda: l2([Value(3.0), Value(-4.0)], alpha=0.01), 0.25),
]


@pytest.mark.parametrize(("make", "expected"), [r[1:] for r in LOSSES], ids=[r[0] for r in LOSSES])
def test_loss_values(make, expected):
    assert make().data == pytest.approx(expected, rel=1e-12)


def test_loss_gradients():
    p, q = Value(0.5), Value(-1.5)
    mse([p, q], [1.0, -1.0]).backward()  # d/dp (p-t)^2/2 = p - t
    assert (p.grad, q.grad) == pytest.approx((-0.5, -0.5))
    s, t = Value(0.5), Value(2.0)
    hinge([s, t], [1, 1]).backward()  # s inside the margin, t beyond it
    assert (s.grad, t.grad) == (-0.5, 0.0)


def test_loss_input_checks_and_accuracy():
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        mse([Value(1.0), Value(2.0)], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        hinge([], [])
    assert accuracy([Value(0.3), Value(-0.1), 2.0, -5.0], [1, 1, 1, -1]) == 0.75


# -- optimizers and schedules ----------------------------------------------------


def quadratic(w: list[Value]) -> Value:
    """(w0 - 3)^2 + 2 (w1 + 1)^2, minimum at (3, -1)."""
    return (w[0] - 3) ** 2 + 2 * (w[1] + 1) ** 2


def _step(opt, w):
    loss = quadratic(w)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.data


def test_plain_sgd_first_step():
    w = [Value(1.0), Value(1.0)]
    opt = SGD(w, lr=0.1)
    _step(opt, w)
    # grads (2*(1-3), 4*(1+1)) = (-4, 8)
    assert [p.data for p in w] == [1.0 - 0.1 * -4.0, 1.0 - 0.1 * 8.0]


def test_sgd_momentum_weight_decay_first_steps_by_hand():
    w = [Value(1.0), Value(1.0)]
    opt = SGD(w, lr=0.1, momentum=0.9, weight_decay=0.01)
    _step(opt, w)
    g1 = [-4.0 + 0.01 * 1.0, 8.0 + 0.01 * 1.0]
    w1 = [1.0 - 0.1 * g1[0], 1.0 - 0.1 * g1[1]]
    assert [p.data for p in w] == pytest.approx(w1, rel=1e-15)
    assert w1 == pytest.approx([1.399, 0.199])
    _step(opt, w)
    g2 = [2 * (w1[0] - 3) + 0.01 * w1[0], 4 * (w1[1] + 1) + 0.01 * w1[1]]
    v2 = [0.9 * g1[0] + g2[0], 0.9 * g1[1] + g2[1]]
    w2 = [w1[0] - 0.1 * v2[0], w1[1] - 0.1 * v2[1]]
    assert [p.data for p in w] == pytest.approx(w2, rel=1e-14)
    assert opt.velocity == pytest.approx(v2, rel=1e-14)


def test_adam_first_step_by_hand():
    w = [Value(1.0), Value(1.0)]
    opt = Adam(w, lr=0.1, weight_decay=0.5)
    _step(opt, w)
    expected = []
    for p0, g in ((1.0, -4.0), (1.0, 8.0)):
        g = g + 0.5 * p0
        m, v = 0.1 * g, 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9), v / (1 - 0.999)
        expected.append(p0 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8))
    assert [p.data for p in w] == pytest.approx(expected, rel=1e-12)
    # the first Adam step moves every parameter by about lr, against its gradient
    assert expected == pytest.approx([1.1, 0.9], abs=1e-8)


@pytest.mark.parametrize(
    ("make", "target"),
    [
        (lambda w: SGD(w, lr=0.1), (3.0, -1.0)),
        (lambda w: SGD(w, lr=0.05, momentum=0.9), (3.0, -1.0)),
        (lambda w: SGD(w, lr=0.05, momentum=0.9, weight_decay=0.01), (6 / 2.01, -4 / 4.01)),
        (lambda w: Adam(w, lr=0.05), (3.0, -1.0)),
        (lambda w: Adam(w, lr=cosine(0.2, 300)), (3.0, -1.0)),
    ],
    ids=["sgd", "momentum", "momentum+wd", "adam", "adam+cosine"],
)
def test_optimizers_minimise_a_quadratic(make, target):
    w = [Value(1.0), Value(1.0)]
    opt = make(w)
    losses = [_step(opt, w) for _ in range(300)]
    assert losses[0] == 12.0
    assert losses[-1] < 1e-3 * losses[0]
    assert [p.data for p in w] == pytest.approx(target, abs=1e-2)
    assert opt.steps == 300


def test_schedules():
    decay = linear_decay(1.0, 0.1, 100)
    assert [decay(k) for k in (0, 50, 100)] == pytest.approx([1.0, 0.55, 0.1])
    assert all(decay(k) == pytest.approx(1.0 - 0.9 * k / 100) for k in range(100))
    assert [step_decay(1.0, 10, 0.5)(k) for k in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert [cosine(1.0, 10)(k) for k in (0, 5, 10, 20)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert constant(0.3)(1000) == 0.3
    opt = SGD([Value(0.0)], lr=decay)
    assert opt.lr == 1.0
    opt.step()
    opt.step()
    assert opt.lr == pytest.approx(0.982)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="positive"):
        linear_decay(1.0, 0.1, 0)


# -- data ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [make_moons, make_circles], ids=["moons", "circles"])
def test_dataset_shape_labels_and_determinism(make):
    X, y = make(100, noise=0.1, seed=3)
    assert len(X) == len(y) == 100
    assert all(len(row) == 2 and all(isinstance(v, float) for v in row) for row in X)
    assert sorted(set(y)) == [-1, 1]
    assert y.count(1) == y.count(-1) == 50
    assert make(100, noise=0.1, seed=3) == (X, y)
    assert make(100, noise=0.1, seed=4)[0] != X
    X01, y01 = make(100, noise=0.1, seed=3, signed=False)
    assert X01 == X and y01 == [(t + 1) // 2 for t in y]
    X_odd, y_odd = make(101, noise=0.1, seed=3)
    assert len(X_odd) == 101 and sorted((y_odd.count(-1), y_odd.count(1))) == [50, 51]
    assert y[:10] != sorted(y[:10]) or y[10:20] != sorted(y[10:20])  # shuffled


def test_moons_without_noise_lie_on_the_two_half_circles():
    X, y = make_moons(50, noise=0.0, seed=0)
    for (a, b), t in zip(X, y):
        if t == -1:  # upper moon: the unit half circle
            assert math.hypot(a, b) == pytest.approx(1.0) and b >= -1e-12
        else:  # lower moon: shifted by (1, 0.5), opening upwards
            assert math.hypot(1 - a, 0.5 - b) == pytest.approx(1.0) and b <= 0.5 + 1e-12


def test_circles_without_noise_have_the_two_radii():
    X, y = make_circles(60, noise=0.0, factor=0.3, seed=0)
    radii = {t: {round(math.hypot(a, b), 9) for (a, b), s in zip(X, y) if s == t} for t in (-1, 1)}
    assert radii == {-1: {1.0}, 1: {0.3}}
    with pytest.raises(ValueError, match="factor"):
        make_circles(10, factor=1.5)


def test_toy_is_the_lecture_data():
    X, y = toy()
    assert X == [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    assert y == [1.0, -1.0, -1.0, 1.0]


# -- training --------------------------------------------------------------------------


def test_toy_training_with_mse_and_sgd():
    X, y = toy()
    model = MLP(3, [4, 4, 1], activation="tanh", seed=1)
    opt = SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(50):
        loss = mse([model(x) for x in X], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.data)
        if loss.data < 0.01:
            break
    assert losses[0] > 0.5
    assert losses[-1] < 0.01
    preds = [model.predict(x) for x in X]
    assert [math.copysign(1.0, p) for p in preds] == y
    assert mse([Value(p) for p in preds], y).data < 0.01


def moons_step(model: MLP, X, y, lr: float) -> tuple[float, float]:
    """micrograd's demo step: hinge + L2, backward, plain SGD update."""
    scores = [model(x) for x in X]
    loss = hinge(scores, y) + l2(model.parameters(), 1e-4)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data, accuracy(scores, y)


def test_moons_demo_reaches_95_percent():
    X, y = make_moons(100, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], seed=1)
    opt = SGD(model.parameters(), lr=linear_decay(1.0, 0.1, 100))
    history = []
    # The collector stays on, but pytest's, sympy's and hypothesis's objects are
    # moved out of its sight: otherwise each full collection walks that whole heap
    # and the 100 steps take three times as long.
    gc.freeze()
    try:
        for _ in range(100):
            scores = [model(x) for x in X]
            loss = hinge(scores, y) + l2(model.parameters(), 1e-4)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append((loss.data, accuracy(scores, y)))
    finally:
        gc.unfreeze()
    first_loss, first_acc = history[0]
    assert first_acc < 0.9
    reached = next(k for k, (_, acc) in enumerate(history) if acc >= 0.95)
    assert reached < 100
    assert accuracy([model.predict(x) for x in X], y) >= 0.95  # and it stays there
    assert history[-1][0] < 0.1 < first_loss
    assert opt.steps == 100 and opt.lr == pytest.approx(0.1)


def test_moons_step_through_the_optimizer_matches_micrograd_update():
    X, y = make_moons(30, noise=0.1, seed=2)
    a, b = MLP(2, [8, 1], seed=2), MLP(2, [8, 1], seed=2)
    opt = SGD(b.parameters(), lr=linear_decay(1.0, 0.1, 100))
    for k in range(3):
        moons_step(a, X, y, 1.0 - 0.9 * k / 100)
        loss = hinge([b(x) for x in X], y) + l2(b.parameters(), 1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert _weights(a) == pytest.approx(_weights(b), rel=1e-13, abs=1e-15)


# -- garbage: the graph is freed by reference counting alone ------------------------


def garbage_from(fn) -> tuple[int, int]:
    """Run ``fn`` with the cyclic collector off; return (objects left tracked, collected)."""
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        fn()
        after = len(gc.get_objects())
        return after - before, gc.collect()
    finally:
        gc.enable()


def test_a_training_step_creates_no_reference_cycles():
    X, y = make_moons(100, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], seed=1)
    moons_step(model, X, y, 1.0)  # warm up any lazily created state
    leftover, collected = garbage_from(lambda: moons_step(model, X, y, 0.9))
    assert collected == 0
    assert leftover == 0


def test_the_cycle_check_can_fail():
    def make_cycle():
        node = Value(1.0)
        holder = [node]
        holder.append(holder)

    leftover, collected = garbage_from(make_cycle)
    assert leftover >= 1 and collected >= 1


def test_micrograd_step_does_leave_cycles():
    mg_engine = pytest.importorskip("micrograd.engine")
    mg_nn = pytest.importorskip("micrograd.nn")
    X, y = make_moons(20, noise=0.1, seed=1)
    model = mg_nn.MLP(2, [4, 1])

    def step():
        scores = [model(list(map(mg_engine.Value, x))) for x in X]
        loss = sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(X))
        model.zero_grad()
        loss.backward()

    _, collected = garbage_from(step)
    assert collected > 1000


def test_engine_package_exports():
    assert set(engine.__all__) >= {"Value", "MLP", "SGD", "Adam", "make_moons", "to_dot"}
    assert engine.OPS[0] == ""
