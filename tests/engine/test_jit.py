"""gradtrace.engine.jit: a replayed step is the eager step, bit for bit."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from gradtrace.engine import (
    MLP,
    GraphChanged,
    JitError,
    Replay,
    Value,
    hinge,
    jit,
    l2,
    make_moons,
    mse,
    toy,
)
from gradtrace.engine.jit import MAX_CAPTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def bits(xs) -> np.ndarray:
    """uint64 views of floats; every NaN as one pattern (payloads aside)."""
    a = np.array(xs, dtype=np.float64)
    a[np.isnan(a)] = np.nan
    return a.view(np.uint64)


def assert_same(eager_root: Value, replay: Replay, params: list[Value], eager_params) -> None:
    nodes = eager_root.topo()
    assert len(nodes) == replay.capture.n_nodes
    np.testing.assert_array_equal(bits([v.data for v in nodes]), bits(replay.values))
    np.testing.assert_array_equal(bits([v.grad for v in nodes]), bits(replay.grads))
    np.testing.assert_array_equal(
        bits([p.grad for p in eager_params]), bits([p.grad for p in params])
    )


def values_of(tree):
    """``tree`` with every number made a Value: what jit hands the function."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(values_of(x) for x in tree)
    return Value(float(tree))


def train_both(make_loss, make_model, batches, lr=0.05, check_every=3):
    """Train two copies of a model on ``batches``, one eager, one jitted, comparing
    every node's value and gradient and every parameter's gradient at every step."""
    eager_model, jit_model = make_model(), make_model()
    eager_fn, jit_fn = make_loss(eager_model), jit(make_loss(jit_model), check_every=check_every)
    for args in batches:
        root = eager_fn(*values_of(args))
        eager_model.zero_grad()
        root.backward()
        replay = jit_fn(*args)
        jit_model.zero_grad()
        replay.backward()
        assert replay.data == root.data or (math.isnan(replay.data) and math.isnan(root.data))
        assert_same(root, replay, jit_model.parameters(), eager_model.parameters())
        for model in (eager_model, jit_model):
            for p in model.parameters():
                p.data -= lr * p.grad
    return jit_fn


def moons_loss(model):
    def loss(X, y):
        scores = [model(x) for x in X]
        return hinge(scores, y) + l2(model.parameters(), 1e-4)

    return loss


def test_moons_relu_step_by_step_bit_identical():
    X, y = make_moons(100, noise=0.1, seed=3)
    batches = [(X, y)] * 4 + [(X[:50], y[:50]), (X, y)]
    fn = train_both(moons_loss, lambda: MLP(2, [16, 16, 1], seed=7), batches, lr=0.5)
    assert len(fn.captures) == 2  # the half batch is another structure


def test_lecture_tanh_mlp_bit_identical():
    X, y = toy()

    def loss(model):
        return lambda X, y: mse([model(x) for x in X], y)

    rng = random.Random(0)
    batches = [([[x + rng.gauss(0, 0.1) for x in row] for row in X], y) for _ in range(6)]
    train_both(loss, lambda: MLP(3, [4, 4, 1], activation="tanh", seed=1), batches, lr=0.1)


def softmax_nll(model):
    """Cross-entropy of a 3-class linear+tanh model: exp, log and / in the graph."""

    def loss(X, labels):
        total = 0.0
        for x, label in zip(X, labels, strict=True):
            logits = model(x)
            exps = [z.exp() for z in logits]
            probs = [e / sum(exps) for e in exps]
            total = total + -(sum(p * t for p, t in zip(probs, label, strict=True))).log()
        return total / len(X)

    return loss


def test_cross_entropy_exp_log_div_bit_identical():
    rng = random.Random(5)
    X = [[rng.uniform(-2, 2) for _ in range(4)] for _ in range(12)]
    labels = [[1.0 if j == i % 3 else 0.0 for j in range(3)] for i in range(12)]
    batches = [(X, labels)] * 3 + [([[a * 1.5 for a in x] for x in X], labels)] * 2
    train_both(softmax_nll, lambda: MLP(4, [5, 3], activation="tanh", seed=2), batches, lr=0.3)


def test_backward_accumulates_like_eager_without_zero_grad_and_twice():
    X, y = make_moons(20, noise=0.1, seed=1)
    eager_model, jit_model = MLP(2, [4, 1], seed=3), MLP(2, [4, 1], seed=3)
    for m in (eager_model, jit_model):
        for i, p in enumerate(m.parameters()):
            p.grad = [-0.0, 0.1, math.inf, 1e300][i % 4]
    fn = jit(moons_loss(jit_model))
    fn(X, y)  # the capture
    root = moons_loss(eager_model)(*values_of((X, y)))
    replay = fn(X, y)
    for _ in range(2):  # no zero_grad: gradients pile up, in the eager order
        root.backward()
        replay.backward()
        assert_same(root, replay, jit_model.parameters(), eager_model.parameters())


def test_values_passed_in_are_used_and_get_their_gradients():
    w = Value(0.5, kind="parameter")

    @jit
    def f(x, scale):
        return (x * w + scale).tanh() * scale

    a, b = Value(2.0), Value(-3.0)
    f(a, b)
    r = f(a, b)  # replayed with the Values' current numbers
    r.backward()
    ea, eb = Value(2.0), Value(-3.0)
    ew = Value(0.5)
    e = (ea * ew + eb).tanh() * eb
    e.backward()
    assert (r.data, a.grad, b.grad, w.grad) == (e.data, ea.grad, eb.grad, ew.grad)
    a.data = 1.0
    assert f(a, b).data == ((Value(1.0) * Value(0.5) + Value(-3.0)).tanh() * -3.0).data


def test_capture_tells_parameters_inputs_and_constants_apart():
    model = MLP(2, [3, 1], seed=0)
    fn = jit(moons_loss(model))
    fn([[0.5, 1.0]], [1])
    (capture,) = fn.captures.values()
    sources = capture.sources()
    assert sources.count("parameter") == len(model.parameters())
    assert sorted(s for s in sources if s.startswith("input")) == ["input 0", "input 1", "input 2"]
    # hinge's 1 and 1/n, the 0 both sum()s start from, l2's alpha (the target is an input)
    assert sources.count("constant") == 5
    assert sorted(capture.const_data) == [0.0, 0.0, 1e-4, 1.0, 1.0]


def test_value_dependent_branch_is_caught_by_the_check():
    w = Value(1.0, kind="parameter")

    def f(x):
        h = x * w
        return h.relu() if h.data > 0 else h.tanh()

    g = jit(f)
    g(1.0)  # captured with relu
    with pytest.raises(GraphChanged, match=r"node 3 is now tanh of node 2, it was relu of node 2"):
        g(-1.0)  # the first replay is checked by default: the branch went the other way


def test_number_from_outside_the_graph_is_caught_by_the_check():
    scale = [2.0]
    g = jit(lambda x: x * scale[0])
    g(1.0)
    scale[0] = 3.0
    with pytest.raises(GraphChanged, match=r"constant leaf 1 .* is 3.0 now, 2.0 in the capture"):
        g(1.0)


def test_check_every_zero_never_reruns_eagerly():
    calls = []

    def f(x):
        calls.append(1)
        return x * 2.0

    g = jit(f, check_every=0)
    for _ in range(5):
        g(1.0)
    assert len(calls) == 1
    g2 = jit(f, check_every=3)
    for _ in range(6):
        g2(1.0)
    assert len(calls) == 1 + 4  # the capture, then the first replay, calls 3 and 6


def test_structures_are_cached_and_the_oldest_forgotten():
    g = jit(lambda xs: sum(x * x for x in xs), check_every=0)
    for n in range(1, MAX_CAPTURES + 3):
        assert g([1.0] * n).data == n
    assert len(g.captures) == len(g.calls) == MAX_CAPTURES


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jit(3), "jit\\(\\) takes a function, got int 3"),
        (lambda: jit(abs, check_every=-1), "check_every must be an int >= 0"),
        (lambda: jit(lambda x: x)(Value(1.0) * 2), "must be a leaf, got a '\\*' node"),
        (lambda: jit(lambda x: x)(np.zeros(2)), "got ndarray .*with .tolist\\(\\)"),
        (lambda: jit(lambda x: 1.0)(2.0), "must return the root Value .*got float"),
    ],
)
def test_bad_input_names_the_argument_and_the_fix(call, message):
    with pytest.raises(JitError, match=message):
        call()


# -- random graphs of every op, non-finite values included -----------------
FLOATS = st.one_of(
    st.floats(-3, 3),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan, 700.0]),
)
BINARY = ["+", "-", "*", "/"]
UNARY = ["neg", "relu", "tanh", "exp", "log", "sigmoid", "**"]
EXPONENTS = [2, 3, 0, -1, 0.5, -2.5, 1]
SPECIAL = np.array([0.0, -0.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan, 710.0, -745.5])


def test_every_op_over_arrays_is_the_eager_op_bit_for_bit():
    """The kernels against Value's own ops, element by element, on 4,000 inputs
    (numpy's SIMD tanh/exp/log/power differ from math's for a share of them)."""
    from gradtrace.engine.jitops import BACKWARD, FORWARD

    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.normal(0, 3, 3000), rng.uniform(-800, 800, 990), SPECIAL])
    ys = np.concatenate([rng.normal(0, 3, 3000), rng.uniform(-2, 2, 990), SPECIAL[::-1]])
    gs = rng.normal(0, 2, len(xs))
    ks = rng.choice(EXPONENTS, len(xs)).astype(float)
    for op in FORWARD:
        outs, grads_a, grads_b = [], [], []
        for x, y, g, k in zip(xs.tolist(), ys.tolist(), gs.tolist(), ks.tolist(), strict=True):
            a, b = Value(x), Value(y)
            a.grad = b.grad = -0.0  # the additive identity: the grad ends as the contribution
            v = {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "**": a**k}.get(op)
            v = v if v is not None else (-a if op == "neg" else getattr(a, op)())
            v.grad = g
            v._backward()
            outs.append(v.data)
            grads_a.append(a.grad)
            grads_b.append(b.grad)
        with np.errstate(all="ignore"):
            got = FORWARD[op](xs, ys, ks)
            ca, cb = BACKWARD[op](gs, xs, ys, got, ks)
        np.testing.assert_array_equal(bits(got), bits(outs), err_msg=op)
        np.testing.assert_array_equal(bits(-0.0 + ca), bits(grads_a), err_msg=op)
        if cb is not None:
            np.testing.assert_array_equal(bits(-0.0 + cb), bits(grads_b), err_msg=op)


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 4))
    n_par = draw(st.integers(1, 3))
    steps = []
    for k in range(draw(st.integers(1, 25))):
        size = n_in + n_par + k
        op = draw(st.sampled_from(BINARY + UNARY + ["const"]))
        i = draw(st.integers(0, size - 1))
        j = draw(st.integers(0, size - 1))
        arg = draw(FLOATS) if op == "const" else draw(st.sampled_from(EXPONENTS))
        steps.append((op, i, j, arg))
    inputs = [draw(st.lists(FLOATS, min_size=n_in, max_size=n_in)) for _ in range(2)]
    params = draw(st.lists(FLOATS, min_size=n_par, max_size=n_par))
    grads = draw(st.lists(FLOATS, min_size=n_par, max_size=n_par))  # no zero_grad()
    return steps, inputs, params, grads


def run_program(steps, xs, params):
    nodes = [*xs, *params]
    for op, i, j, arg in steps:
        a, b = nodes[i], nodes[j]
        if op == "const":
            nodes.append(a * arg)
        elif op in BINARY:
            nodes.append({"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op])
        elif op == "**":
            nodes.append(a**arg)
        else:
            nodes.append(getattr(a, op)() if op != "neg" else -a)
    return sum(nodes[len(xs) :], 0.0) + nodes[-1] * nodes[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_graphs_of_every_op_bit_identical(program):
    steps, inputs, start, start_grads = program
    jit_params = [Value(x, kind="parameter") for x in start]
    fn = jit(lambda *xs: run_program(steps, list(xs), jit_params), check_every=0)
    for xs in inputs:  # the first call captures, the second replays new inputs
        eager_params = [Value(x, kind="parameter") for x in start]
        for p, q, g in zip(eager_params, jit_params, start_grads, strict=True):
            p.grad = q.grad = g
        root = run_program(steps, [Value(x) for x in xs], eager_params)
        root.backward()
        replay = fn(*xs)
        replay.backward()
        assert_same(root, replay, jit_params, eager_params)


def test_import_gradtrace_engine_stays_light(tmp_path):
    """numpy is loaded by the first jitted call, not by ``import gradtrace.engine``."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gradtrace.engine import jit\n"
        "print('numpy' in sys.modules)\n"
        "jit(lambda x: x * 2.0)(1.0)\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("module", ["jit", "jitgraph", "jitplan", "jitops"])
def test_docstring_examples_hold(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"gradtrace.engine.{module}"))
    assert result.attempted > 0 and result.failed == 0
