"""The op table is the one definition of every op: everything else must agree with it.

For every op in ``OP_TABLE``, on random and special inputs (0, ±0.0, ±inf, NaN
with payloads, subnormals, huge): the vectorised forward and backward give the
scalar ones' bits; Value's methods compute the table's forward; ``rules.chain``
adds exactly the table's backward to the operands' gradients. A NaN matches any
NaN (its payload depends on the CPU's choice of operand), -0.0 never matches 0.0.
"""

from __future__ import annotations

import itertools
import math
import random
import struct

import numpy as np
import pytest
from gradtrace.engine import OP_TABLE, POW, Op, UnknownOp, Value, from_lecture, lecture_name
from gradtrace.engine import apply as apply_op
from gradtrace.engine.rules import chain


def _f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


SPECIAL = [
    0.0, -0.0, 1.0, -1.0, 0.5, -2.25, 3.0, 20.0, -20.0, 710.0, -745.5,
    math.inf, -math.inf, math.nan, _f64(0xFFF8_0000_0000_0000), _f64(0x7FF8_0000_0000_1234),
    5e-324, -5e-324, 1.1125369292536007e-308, 2.2250738585072014e-308,
    1.7976931348623157e308, -1.7976931348623157e308, 1.3e154, 1e-200,
]  # fmt: skip
_rng = random.Random(18)
RANDOM = (
    [_rng.uniform(-4.0, 4.0) for _ in range(12)]
    + [_rng.choice((-1, 1)) * 10 ** _rng.uniform(-300, 300) for _ in range(8)]
    + [_f64(_rng.getrandbits(64)) for _ in range(8)]  # any bits: NaN payloads, subnormals
)
INPUTS = SPECIAL + RANDOM
EXPONENTS = [0.0, -0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 2.5, 1e308, math.inf, -math.inf,
             math.nan, _rng.uniform(-3, 3)]  # fmt: skip
GRADS = [1.0, -0.0, 0.0, -3.5, 1e300, 5e-324, math.inf, math.nan, _rng.uniform(-2, 2)]


def same(a: float, b: float) -> bool:
    """Equal bits, or both NaN."""
    return (a != a and b != b) or struct.pack("<d", a) == struct.pack("<d", b)


def operands(op: type[Op]) -> list[tuple[float, float | None]]:
    """(x, y) pairs for ``op``: y is the second operand, the exponent, or None."""
    if op.code == POW:
        return list(itertools.product(INPUTS, EXPONENTS))
    if op.arity == 2:
        return list(itertools.product(INPUTS, INPUTS))
    return [(x, None) for x in INPUTS]


def check_vectorised(op: type[Op]) -> None:
    """The vectorised forward and backward give the scalar ones' bits, element by element."""
    assert op.vforward is not None, f"op {op.code!r} has no vectorised forward"
    assert op.vbackward is not None, f"op {op.code!r} has no vectorised backward"
    pairs = operands(op)
    cases = [(x, y, op.forward(x, y), g) for (x, y), g in itertools.product(pairs, GRADS)]
    x, y, out, g = (
        np.array([c[i] if c[i] is not None else np.nan for c in cases]) for i in range(4)
    )
    with np.errstate(all="ignore"):
        vout = op.vforward(x, y)
        vsent = [np.broadcast_to(s, x.shape) for s in op.vbackward(x, y, out, g)]
    for i, (xi, yi, oi, gi) in enumerate(cases):
        assert same(float(vout[i]), oi), (op.code, xi, yi, "forward", float(vout[i]), oi)
        sent = op.backward(xi, yi, oi, gi)
        assert len(sent) == len(vsent) == op.arity
        for k, s in enumerate(sent):
            assert same(float(vsent[k][i]), s), (op.code, xi, yi, gi, k, float(vsent[k][i]), s)


def check_engine(op: type[Op]) -> None:
    """Value's method computes the table's forward; chain() adds the table's backward."""
    for x, y in operands(op):
        a = Value(x)
        b = Value(y) if op.arity == 2 else None
        node = apply_op(op.code, a, b, arg=y)
        assert same(node.data, op.forward(x, y)), (op.code, x, y, node.data)
        for g, acc in ((1.0, 0.0), (-0.0, 0.0), (math.inf, 0.75), (_rng.uniform(-2, 2), -1.5)):
            parents = (a,) if b is None else (a, b)
            for p in parents:
                p.grad = acc
            node.grad = g
            chain([node])
            sent = op.backward(x, y, node.data, g)
            for k, p in enumerate(parents):
                assert same(p.grad, acc + sent[k]), (op.code, x, y, g, k, p.grad, acc + sent[k])


@pytest.mark.parametrize("op", OP_TABLE.values(), ids=list(OP_TABLE))
def test_vectorised_forms_agree_with_the_scalar_ones_bit_for_bit(op):
    check_vectorised(op)


@pytest.mark.parametrize("op", OP_TABLE.values(), ids=list(OP_TABLE))
def test_the_engine_computes_the_tables_forward_and_backward(op):
    check_engine(op)


class Cube(Op):
    """An op added to the table with its scalar rules only."""

    code, lecture, spellings, method = "cube", "cube", ("cube",), "cube"

    def forward(x, y):
        return x * x * x

    def backward(x, y, out, g):
        return (3.0 * x * x * g,)


def test_an_op_without_vectorised_rules_fails_the_check():
    with pytest.raises(AssertionError, match="'cube' has no vectorised forward"):
        check_vectorised(Cube)


def test_an_op_without_a_rule_in_chain_fails_the_check(monkeypatch):
    monkeypatch.setattr(Value, "cube", lambda v: apply_op("**", v, arg=3.0), raising=False)
    monkeypatch.setitem(OP_TABLE, "cube", Cube)
    node = Value(2.0) ** 3.0
    node.op = "cube"  # what a Value.cube() with no branch in chain would make
    node.grad = 1.0
    with pytest.raises(RuntimeError, match="no backward rule for op 'cube'"):
        chain([node])


def test_a_wrong_vectorised_rule_fails_the_check(monkeypatch):
    numpy_tanh = OP_TABLE["tanh"]
    # numpy's own tanh: the last bit differs from math.tanh for some inputs
    monkeypatch.setattr(numpy_tanh, "vforward", lambda x, y: np.tanh(x))
    with pytest.raises(AssertionError, match="forward"):
        check_vectorised(numpy_tanh)


# -- spellings ----------------------------------------------------------------

SPELLINGS = [
    ("+", "+", None), ("-", "-", None), ("*", "*", None), ("/", "/", None),
    ("**2", "**", 2.0), ("**-1", "**", -1.0), ("**0.5", "**", 0.5), ("**-0.5", "**", -0.5),
    ("ReLU", "relu", None), ("relu", "relu", None), ("tanh", "tanh", None),
    ("exp", "exp", None), ("log", "log", None), ("sigmoid", "sigmoid", None),
    ("neg", "neg", None),
]  # fmt: skip


@pytest.mark.parametrize(("written", "code", "k"), SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_foreign_op_strings_map_onto_the_table(written, code, k):
    got, exponent = from_lecture(written)
    assert got is OP_TABLE[code].code  # the very string nodes hold: ops compare by identity
    assert exponent == k and (k is None or math.copysign(1, exponent) == math.copysign(1, k))


@pytest.mark.parametrize("written", ["sin", "**", "**x", "", "RELU", "+ ", "**2**2"])
def test_an_unknown_op_string_is_told_apart(written):
    with pytest.raises(UnknownOp) as err:
        from_lecture(written)
    assert err.value.op == written
    assert isinstance(err.value, ValueError)  # callers catching ValueError still do


def test_lecture_names_read_back_as_the_same_op():
    for code, op in OP_TABLE.items():
        k = 2.0 if code == POW else None
        assert from_lecture(lecture_name(code, k)) == (code, k)
        assert op.lecture in op.spellings or code == POW
    assert [lecture_name(POW, k) for k in (2.0, -1.0, 0.5)] == ["**2", "**-1", "**0.5"]
    assert lecture_name("relu") == "ReLU" and lecture_name("sin") == "sin"


def test_every_op_names_how_to_build_it_and_its_arity():
    for code, op in OP_TABLE.items():
        assert op.code == code and callable(getattr(Value, op.method))
        assert op.arity == (2 if code in "+-*/" else 1)
