"""The scalar engine's arithmetic: forward values and gradients of every op.

Each op is one table row checked against an independent reference (``math`` for
the value, central finite differences of that reference for the gradient);
random expression trees are checked against sympy's exact derivatives.
"""

from __future__ import annotations

import hashlib
import math
import operator
import os
import subprocess
import sys
import textwrap

import pytest
import sympy
from gradtrace.engine import Value, structure, to_dot, topo
from helpers.engine import readme_g
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

# -- the lecture's worked numbers ---------------------------------------------


def readme_example(V: type = Value) -> tuple:
    """micrograd's README expression built from Value class ``V``; returns (a, b, g)."""
    a = V(-4.0)
    b = V(2.0)
    return a, b, readme_g(a, b)


def test_readme_example_matches_the_lecture_numbers():
    a, b, g = readme_example()
    g.backward()
    assert f"{g.data:.4f}" == "24.7041"
    assert f"{a.grad:.4f}" == "138.8338"
    assert f"{b.grad:.4f}" == "645.5773"


def test_readme_example_agrees_with_micrograd_bit_for_bit():
    micrograd = pytest.importorskip("micrograd.engine")
    a, b, g = readme_example(micrograd.Value)
    g.backward()
    ours_a, ours_b, ours_g = readme_example()
    ours_g.backward()
    assert (ours_g.data, ours_a.grad, ours_b.grad) == pytest.approx(
        (g.data, a.grad, b.grad), rel=1e-12
    )


def tanh_neuron(tanh):
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    o = tanh(n)
    o.backward()
    return o, x1, x2, w1, w2


def _tanh_via_exp(n: Value) -> Value:
    e = (2 * n).exp()
    return (e - 1) / (e + 1)


@pytest.mark.parametrize(
    "tanh", [lambda n: n.tanh(), _tanh_via_exp], ids=["tanh-op", "tanh-via-exp"]
)
def test_tanh_neuron(tanh):
    o, x1, x2, w1, w2 = tanh_neuron(tanh)
    assert o.data == pytest.approx(math.sqrt(0.5), abs=1e-12)
    assert f"{o.data:.4f}" == "0.7071"
    assert x1.grad == pytest.approx(-1.5, abs=1e-9)
    assert w1.grad == pytest.approx(1.0, abs=1e-9)
    assert x2.grad == pytest.approx(0.5, abs=1e-9)
    assert w2.grad == pytest.approx(0.0, abs=1e-12)


def test_tanh_via_exp_builds_the_expected_ops():
    o, *_ = tanh_neuron(_tanh_via_exp)
    ops = [v.op for v in o.topo()]
    assert ops.count("exp") == 1 and ops.count("/") == 1 and ops.count("-") == 1
    assert "tanh" not in ops


# -- every op against a reference ---------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# (id, op code of the output node, engine expression, reference on floats, inputs)
OPS = [
    ("add", "+", lambda a, b: a + b, operator.add, (1.5, -2.25)),
    ("sub", "-", lambda a, b: a - b, operator.sub, (1.5, -2.25)),
    ("mul", "*", lambda a, b: a * b, operator.mul, (1.5, -2.25)),
    ("div", "/", lambda a, b: a / b, operator.truediv, (1.5, -2.25)),
    ("pow-int", "**", lambda a: a**3, lambda a: a**3, (1.3,)),
    ("pow-neg-int", "**", lambda a: a**-2, lambda a: a**-2, (-1.3,)),
    ("pow-float", "**", lambda a: a**2.5, lambda a: a**2.5, (1.7,)),
    ("pow-half", "**", lambda a: a**0.5, math.sqrt, (2.0,)),
    ("neg", "neg", lambda a: -a, operator.neg, (0.7,)),
    ("rmul 2*v", "*", lambda a: 2 * a, lambda a: 2 * a, (0.7,)),
    ("rsub 1-v", "-", lambda a: 1 - a, lambda a: 1 - a, (0.7,)),
    ("rdiv 10/v", "/", lambda a: 10.0 / a, lambda a: 10.0 / a, (0.7,)),
    ("radd 1+v", "+", lambda a: 1 + a, lambda a: 1 + a, (0.7,)),
    ("add v+1", "+", lambda a: a + 1, lambda a: a + 1, (0.7,)),
    ("sub v-1", "-", lambda a: a - 1, lambda a: a - 1, (0.7,)),
    ("div v/2", "/", lambda a: a / 2, lambda a: a / 2, (0.7,)),
    ("relu+", "relu", lambda a: a.relu(), lambda a: max(a, 0.0), (1.3,)),
    ("relu-", "relu", lambda a: a.relu(), lambda a: max(a, 0.0), (-1.3,)),
    ("tanh", "tanh", lambda a: a.tanh(), math.tanh, (0.4,)),
    ("exp", "exp", lambda a: a.exp(), math.exp, (0.4,)),
    ("log", "log", lambda a: a.log(), math.log, (0.4,)),
    ("sigmoid+", "sigmoid", lambda a: a.sigmoid(), _sigmoid, (0.8,)),
    ("sigmoid-", "sigmoid", lambda a: a.sigmoid(), _sigmoid, (-2.5,)),
]


def central_difference(f, xs: tuple[float, ...], i: int, h: float = 1e-6) -> float:
    up = list(xs)
    down = list(xs)
    up[i] += h
    down[i] -= h
    return (f(*up) - f(*down)) / (2 * h)


@pytest.mark.parametrize(
    ("op", "fn", "ref", "xs"), [row[1:] for row in OPS], ids=[r[0] for r in OPS]
)
def test_op_value_and_gradient(op, fn, ref, xs):
    inputs = [Value(x) for x in xs]
    out = fn(*inputs)
    assert out.op == op
    assert out.data == pytest.approx(ref(*xs), rel=1e-12, abs=1e-12)
    out.backward()
    for i, v in enumerate(inputs):
        assert v.grad == pytest.approx(central_difference(ref, xs, i), rel=1e-6, abs=1e-7), i


def test_pow_records_its_exponent():
    x = Value(3.0)
    assert (x**2).exponent == 2.0
    assert (x**0.5).exponent == 0.5
    assert (x * 2).exponent is None


# -- random expression trees against sympy --------------------------------------

VARS = ("x", "y", "z")
SYMBOLS = dict(zip(VARS, sympy.symbols(VARS, real=True)))
CONSTS = ("-2", "-0.5", "0.5", "1", "2", "3", "10")
HALF = 0.5

# Unary node kinds, each written with Python operators and four functions, so the
# very same code builds the engine graph and the sympy expression. Domains are
# safe by construction: log, /, negative powers and fractional powers only ever
# see ``a*a + 0.5 > 0``.
UNARY = {
    "neg": lambda f, a: -a,
    "relu": lambda f, a: f["relu"](a),
    "tanh": lambda f, a: f["tanh"](a),
    "exp": lambda f, a: f["exp"](a),
    "sigmoid": lambda f, a: f["sigmoid"](a),
    "log": lambda f, a: f["log"](a * a + f["half"]),
    "pow2": lambda f, a: a**2,
    "pow3": lambda f, a: a**3,
    "pow1.5": lambda f, a: (a * a + f["half"]) ** f["three_halves"],
    "pow-1": lambda f, a: (a * a + f["half"]) ** -1,
}
BINARY = {
    "add": lambda f, a, b: a + b,
    "sub": lambda f, a, b: a - b,
    "mul": lambda f, a, b: a * b,
    "div": lambda f, a, b: a / (b * b + f["half"]),
}
# A plain number on either side: exercises __radd__, __rsub__, __rmul__, __rtruediv__.
WITH_CONST = {
    "c+a": lambda f, c, a: c + a,
    "c-a": lambda f, c, a: c - a,
    "c*a": lambda f, c, a: c * a,
    "c/a": lambda f, c, a: c / (a * a + f["half"]),
    "a+c": lambda f, c, a: a + c,
    "a*c": lambda f, c, a: a * c,
}

ENGINE_FUNCS = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "exp": Value.exp,
    "log": Value.log,
    "sigmoid": Value.sigmoid,
    "half": HALF,
    "three_halves": 1.5,
    "const": float,
}
SYMPY_FUNCS = {
    "relu": lambda a: sympy.Max(0, a),
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "log": sympy.log,
    "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
    "half": sympy.Rational(1, 2),
    "three_halves": sympy.Rational(3, 2),
    "const": sympy.Rational,
}


def _extend(children):
    return (
        st.tuples(st.sampled_from(sorted(UNARY)), children)
        | st.tuples(st.sampled_from(sorted(BINARY)), children, children)
        | st.tuples(st.sampled_from(sorted(WITH_CONST)), st.sampled_from(CONSTS), children)
    )


# At least one op at the root; up to 8 variable leaves below it.
TREES = _extend(st.recursive(st.sampled_from(VARS), _extend, max_leaves=8))


def build(tree, env: dict, f: dict, relu_args: list):
    """Evaluate ``tree`` with the leaves in ``env`` and the functions in ``f``."""
    if isinstance(tree, str):
        return env[tree]
    kind = tree[0]
    if kind in UNARY:
        a = build(tree[1], env, f, relu_args)
        if kind == "relu":
            relu_args.append(a)
        return UNARY[kind](f, a)
    if kind in BINARY:
        return BINARY[kind](f, build(tree[1], env, f, relu_args), build(tree[2], env, f, relu_args))
    return WITH_CONST[kind](f, f["const"](tree[1]), build(tree[2], env, f, relu_args))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    tree=TREES,
    point=st.tuples(*[st.floats(-2.0, 2.0, allow_nan=False) for _ in VARS]),
)
def test_random_expressions_match_sympy_derivatives(tree, point):
    env = {name: Value(x, label=name) for name, x in zip(VARS, point)}
    relu_args: list = []
    out = build(tree, env, ENGINE_FUNCS, relu_args)
    # relu is not differentiable at 0 (sympy says 1/2 there, the engine says 0).
    assume(all(abs(a.data) > 1e-9 for a in relu_args))
    nodes = out.topo()
    out.backward()
    scale = max(abs(x) for v in nodes for x in (v.data, v.grad))
    assume(math.isfinite(scale) and scale < 1e8)

    expr = build(tree, SYMBOLS, SYMPY_FUNCS, [])
    subs = {SYMBOLS[name]: sympy.Float(x, 30) for name, x in zip(VARS, point)}
    tol = 1e-9 * max(1.0, scale)
    assert out.data == pytest.approx(float(expr.evalf(30, subs=subs)), abs=tol)
    for name in VARS:
        exact = float(sympy.diff(expr, SYMBOLS[name]).evalf(30, subs=subs))
        assert env[name].grad == pytest.approx(exact, abs=tol), (name, tree)


# -- backward: accumulation, depth, zero_grad ---------------------------------


def test_reused_node_accumulates_add():
    a = Value(3.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0
    assert b.data == 6.0


def test_reused_node_accumulates_mul():
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0


def test_shared_subexpression_gets_every_path():
    a, b = Value(-2.0), Value(3.0)
    d = a * b
    e = a + b
    f = d * e  # df/da = b*e + d = 3*1 + -6 = -3; df/db = a*e + d = -2 - 6 = -8
    f.backward()
    assert (a.grad, b.grad) == (-3.0, -8.0)


def test_backward_accumulates_across_calls_until_zeroed():
    x = Value(2.0)
    y = x * 5
    y.backward()
    y.backward()
    assert x.grad == 10.0
    x.grad = 0.0
    y.backward()
    assert x.grad == 5.0


def test_chain_of_100000_additions_needs_no_recursion():
    x = Value(1.0, label="x")
    s = x
    for _ in range(100_000):
        s = s + x
    assert sys.getrecursionlimit() < 100_000
    s.backward()
    assert s.data == 100_001.0
    assert x.grad == 100_001.0
    assert len(s.topo()) == 100_001
    del s  # freeing a deep chain must not overflow the C stack either


def test_leaf_topo_and_backward():
    x = Value(4.0, label="x")
    assert x.topo() == [x]
    assert topo(x) == [x]
    nodes, ops, pa, pb = structure(x)
    assert nodes == [x] and ops == [""] and list(pa) == [-1] and list(pb) == [-1]
    x.backward()
    assert x.grad == 1.0
    assert x.parents == ()


# -- deterministic node order ---------------------------------------------------


def _program(w: list[Value], xs: list[float]) -> Value:
    """A small program with shared nodes and every op."""
    h = [((wi * xi + w[0]).tanh() - w[1] / (w[2] ** 2 + 1)).relu() for wi, xi in zip(w, xs)]
    out = sum(h, w[3].sigmoid()) * 0.5 + (w[4] * w[4]).exp().log() - (-w[5])
    return out + (1 - out) * 2


def _structure_key(root: Value):
    _, ops, pa, pb = structure(root)
    return ops, list(pa), list(pb)


def test_topo_is_a_topological_order_ending_at_the_root():
    w = [Value(0.1 * i - 0.3) for i in range(6)]
    root = _program(w, [0.5, -1.0, 2.0, 0.25, 1.5, -0.75])
    nodes, ops, pa, pb = structure(root)
    assert nodes[-1] is root
    assert len({id(v) for v in nodes}) == len(nodes)
    for i, v in enumerate(nodes):
        parents = v.parents
        assert [nodes[j] for j in (pa[i], pb[i]) if j >= 0] == list(parents)
        assert all(j < i for j in (pa[i], pb[i]))
        assert ops[i] == v.op


def test_node_order_is_depth_first_in_argument_order():
    a, b, c = Value(1.0, label="a"), Value(2.0, label="b"), Value(3.0, label="c")
    ab = a * b
    root = (ab + c) - ab.tanh()
    nodes, ops, pa, pb = structure(root)
    assert [v.label or v.op for v in nodes] == ["a", "b", "*", "c", "+", "tanh", "-"]
    assert (list(pa), list(pb)) == ([-1, -1, 0, -1, 2, 2, 4], [-1, -1, 1, -1, 3, -1, 5])
    x = Value(3.0)
    _, ops, pa, pb = structure(x * x + 1)
    assert (ops, list(pa), list(pb)) == (["", "*", "", "+"], [-1, 0, -1, 1], [-1, 0, -1, 2])


def test_identical_graphs_have_identical_node_order():
    xs = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75]
    first = _program([Value(0.1 * i - 0.3) for i in range(6)], xs)
    second = _program([Value(0.1 * i - 0.3) for i in range(6)], xs)
    assert _structure_key(first) == _structure_key(second)
    assert [v.data for v in first.topo()] == [v.data for v in second.topo()]


def test_node_order_is_stable_across_steps_and_interleaved_traversals():
    w = [Value(0.1 * i - 0.3) for i in range(6)]
    xs = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75]
    step1 = _program(w, xs)
    key1 = _structure_key(step1)
    step1.backward()
    for p in w:
        p.data -= 0.1 * p.grad
        p.grad = 0.0
    step2 = _program(w, xs)
    other = w[0] * w[5]  # a traversal that renumbers shared parameters
    other.topo()
    assert _structure_key(step2) == key1
    # step1's cached order is still numbered correctly after step2 renumbered w
    nodes, _, pa, _ = structure(step1)
    assert all(nodes[pa[i]] is v._a for i, v in enumerate(nodes) if pa[i] >= 0)


def test_two_processes_give_the_same_node_order():
    code = textwrap.dedent(
        """
        import hashlib
        from gradtrace.engine import Value, structure
        w = [Value(0.1 * i) for i in range(5)]
        h = [(wi * wj).tanh() + wi for wi in w for wj in w]
        root = sum(h, w[0]).relu() / (w[1] + 2)
        _, ops, pa, pb = structure(root)
        print(hashlib.sha256(repr((ops, list(pa), list(pb))).encode()).hexdigest())
        """
    )
    digests = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1
    assert len(next(iter(digests))) == 64


def test_structure_hash_changes_with_the_program():
    # the determinism check above would pass vacuously if the key ignored the program
    a = Value(1.0)
    k1 = hashlib.sha256(repr(_structure_key(a * a + a)).encode()).digest()
    k2 = hashlib.sha256(repr(_structure_key(a + a * a)).encode()).digest()
    assert k1 != k2


# -- IEEE 754 instead of exceptions -------------------------------------------

IEEE = [
    ("x/0", lambda: Value(1.0) / 0, math.inf),
    ("-x/0", lambda: Value(-1.0) / 0, -math.inf),
    ("0/0", lambda: Value(0.0) / 0, math.nan),
    ("log(0)", lambda: Value(0.0).log(), -math.inf),
    ("log(-1)", lambda: Value(-1.0).log(), math.nan),
    ("exp(1000)", lambda: Value(1000.0).exp(), math.inf),
    ("exp(-1000)", lambda: Value(-1000.0).exp(), 0.0),
    ("(-8)**0.5", lambda: Value(-8.0) ** 0.5, math.nan),
    ("0**-1", lambda: Value(0.0) ** -1, math.inf),
    ("10**400", lambda: Value(10.0) ** 400, math.inf),
    ("(-10)**401", lambda: Value(-10.0) ** 401, -math.inf),
    ("(-1e200)**2.5", lambda: Value(-1e200) ** 2.5, math.nan),
    ("relu(nan)", lambda: Value(math.nan).relu(), math.nan),
    ("tanh(nan)", lambda: Value(math.nan).tanh(), math.nan),
    ("sigmoid(nan)", lambda: Value(math.nan).sigmoid(), math.nan),
    ("sigmoid(-1000)", lambda: Value(-1000.0).sigmoid(), 0.0),
    ("sigmoid(1000)", lambda: Value(1000.0).sigmoid(), 1.0),
    ("tanh(1000)", lambda: Value(1000.0).tanh(), 1.0),
]


@pytest.mark.parametrize(("make", "expected"), [r[1:] for r in IEEE], ids=[r[0] for r in IEEE])
def test_ieee_results_instead_of_exceptions(make, expected):
    out = make()
    if math.isnan(expected):
        assert math.isnan(out.data)
    else:
        assert out.data == expected
    out.backward()  # must not raise either


def test_nan_weight_reaches_the_output_through_relu():
    # a diverged first layer must show up in the score, not be clipped to 0 by relu
    h = (Value(math.nan) * 2.0 + 1.0).relu()
    out = h * 0.5 + 1.0
    assert math.isnan(out.data)


@pytest.mark.parametrize("x", [0.0, 2.0, -3.0])
def test_gradient_of_a_zeroth_power_is_zero(x):
    v = Value(x)
    out = v**0
    out.backward()
    assert out.data == 1.0
    assert v.grad == 0.0


def test_division_by_zero_gradient_is_infinite_not_an_exception():
    a, b = Value(1.0), Value(0.0)
    (a / b).backward()
    assert a.grad == math.inf
    assert math.isinf(b.grad)


# -- input validation ---------------------------------------------------------


BAD_INPUT = [
    ("str", lambda: Value("x"), r"real number, got str 'x'"),
    ("None", lambda: Value(None), r"real number, got NoneType"),
    ("bool", lambda: Value(True), r"real number, got bool"),
    ("complex", lambda: Value(1 + 2j), r"real number, got complex"),
    ("Value", lambda: Value(Value(1.0)), r"plain number, got a Value"),
    ("label", lambda: Value(1.0, label=3), r"label must be a str"),
    ("Value-exponent", lambda: Value(2.0) ** Value(2.0), r"int or float.*\(y \* x\.log\(\)\)"),
    ("str-exponent", lambda: Value(2.0) ** "2", r"exponent must be an int or float"),
    ("add-str", lambda: Value(2.0) + "1", r"real number, got str"),
    ("rsub-str", lambda: "1" - Value(2.0), r"real number, got str"),
]


@pytest.mark.parametrize(
    ("make", "message"), [r[1:] for r in BAD_INPUT], ids=[r[0] for r in BAD_INPUT]
)
def test_bad_input_raises_type_error_with_a_hint(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_int_and_float_inputs_become_floats():
    assert type(Value(3).data) is float
    assert (Value(3) ** 2).data == 9.0
    assert repr(Value(1.5, label="w")) == "Value(w|data=1.5, grad=0.0)"


# -- Graphviz export ------------------------------------------------------------


def test_to_dot_has_one_record_per_node_and_op_nodes():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = (c + 10.0).tanh() ** 2
    L.backward()
    nodes = L.topo()
    dot = to_dot(L)
    lines = dot.splitlines()
    assert lines[0] == "digraph G {" and lines[-1] == "}"
    records = [line for line in lines if "shape=record" in line]
    assert len(records) == len(nodes)
    for i, v in enumerate(nodes):
        record = f'label="{{ {v.label} | data {v.data:.4f} | grad {v.grad:.4f} }}"'
        assert f"  n{i} [shape=record, {record}];" in lines
    op_nodes = [line for line in lines if "shape=circle" in line]
    assert len(op_nodes) == sum(1 for v in nodes if v.op)
    assert any('label="**2"' in line for line in op_nodes)
    assert any('label="tanh"' in line for line in op_nodes)
    edges = [line for line in lines if "->" in line]
    assert len(edges) == sum(1 + len(v.parents) for v in nodes if v.op)
    # b's record carries the gradient backward computed: dL/db = 2L' tanh' * a
    t = math.tanh(4.0)
    assert b.grad == pytest.approx(2 * t * (1 - t * t) * 2.0)
    assert f"{{ b | data -3.0000 | grad {b.grad:.4f} }}" in dot


def test_to_dot_escapes_labels():
    x = Value(1.0, label='say "hi" | <script>alert(1)</script> {x}')
    dot = to_dot(x * 2)
    assert "<script>" not in dot
    assert '"hi"' not in dot
    assert r"say \"hi\" \| \<script\>alert(1)\</script\> \{x\}" in dot
    # the only unescaped quotes are the ones delimiting labels
    for line in dot.splitlines():
        assert line.replace('\\"', "").count('"') in (0, 2)


def test_to_dot_rejects_an_unknown_rankdir():
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(Value(1.0), rankdir="XY")


def test_leaf_kinds():
    """A hand-made leaf is an input, an op's plain-number operand a constant (either
    side), a loss's target a target, nn's weights parameters; bad kinds are refused."""
    from gradtrace.engine import MLP, binary_cross_entropy, hinge, mse

    x = Value(2.0)
    assert x.kind == "input" and (x * 3).kind == ""
    for made in (x + 1, x - 1, x * 2, x / 2, 1 - x, 2 / x, 3 * x, 1 + x):
        consts = [p for p in made.parents if p is not x]
        assert [p.kind for p in consts] == ["constant"]
    assert Value(1.0, kind="target").kind == "target"
    for loss in (mse, hinge, binary_cross_entropy):
        leaves = [v for v in loss([Value(0.5)], [1]).topo() if not v.op]
        assert [v.kind for v in leaves].count("target") == 1, loss.__name__
    assert {p.kind for p in MLP(2, [2, 1], seed=0).parameters()} == {"parameter"}
    with pytest.raises(ValueError, match="kind must be one of"):
        Value(1.0, kind="weight")
