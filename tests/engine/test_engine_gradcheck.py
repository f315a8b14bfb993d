"""gradcheck: backward() against central differences, on right and deliberately wrong gradients."""

from __future__ import annotations

import doctest
import math

import pytest
from gradtrace.engine import GradCheck, Value, gradcheck
from gradtrace.engine import check as check_module
from helpers.engine import readme_g


def neuron(x1, x2, w1, w2, b):
    return (x1 * w1 + x2 * w2 + b).tanh()


def dot_tanh(xs, ws):
    return sum((x * w for x, w in zip(xs, ws)), Value(0.0)).tanh()


# (id, f, inputs): every op, reuse, list inputs and the lecture's expressions.
CORRECT = [
    ("add", lambda a, b: a + b, (1.5, -2.25)),
    ("sub", lambda a, b: a - b, (1.5, -2.25)),
    ("mul", lambda a, b: a * b, (1.5, -2.25)),
    ("div", lambda a, b: a / b, (1.5, -2.25)),
    ("pow-int", lambda a: a**3, (1.3,)),
    ("pow-neg", lambda a: a**-2, (-1.3,)),
    ("pow-float", lambda a: a**2.5, (1.7,)),
    ("neg", lambda a: -a, (0.7,)),
    ("relu", lambda a: a.relu(), (0.7,)),
    ("tanh", lambda a: a.tanh(), (0.7,)),
    ("exp", lambda a: a.exp(), (0.7,)),
    ("log", lambda a: a.log(), (0.7,)),
    ("sigmoid", lambda a: a.sigmoid(), (-0.7,)),
    ("reused", lambda a: a * a + a, (1.3,)),
    ("micrograd-readme", readme_g, (-4.0, 2.0)),
    ("lecture-neuron", neuron, (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)),
    ("list-inputs", dot_tanh, ([1.0, 2.0, -1.0], [0.1, -0.3, 0.5])),
]


@pytest.mark.parametrize("f, inputs", [pytest.param(*r[1:], id=r[0]) for r in CORRECT])
def test_correct_gradients_pass(f, inputs):
    check = gradcheck(f, *inputs)
    assert isinstance(check, GradCheck)
    assert check.ok, str(check)
    assert check.error < 1e-8
    assert [len(i.analytic) for i in check.inputs] == [
        len(x) if isinstance(x, list) else 1 for x in inputs
    ]


def test_analytic_and_numeric_figures_are_the_lecture_numbers():
    check = gradcheck(readme_g, -4.0, 2.0)
    a, b = check.inputs
    assert [f"{a.analytic[0]:.4f}", f"{b.analytic[0]:.4f}"] == ["138.8338", "645.5773"]
    assert a.numeric[0] == pytest.approx(138.8338, abs=1e-4)
    assert b.numeric[0] == pytest.approx(645.5773, abs=1e-4)
    x1, _, w1, w2, _ = gradcheck(neuron, 2.0, 0.0, -3.0, 1.0, 6.8813735870195432).inputs
    assert x1.analytic[0] == pytest.approx(-1.5, abs=1e-9)
    assert w1.analytic[0] == pytest.approx(1.0, abs=1e-9)
    assert w2.analytic == (0.0,) and abs(w2.numeric[0]) < 1e-9  # zero compared absolutely
    assert w2.ok


def test_zero_gradient_is_compared_absolutely():
    """At the bottom of a parabola backward() gives 0, the differences a rounding residue."""
    (x,) = gradcheck(lambda x: (x - 1) ** 2, 1.0).inputs
    assert x.analytic == (0.0,)
    assert x.numeric[0] != 0.0 and abs(x.numeric[0]) < 1e-12
    assert x.ok and x.error == abs(x.numeric[0])


# (id, f, inputs, which inputs pass): gradients that are wrong on purpose.
WRONG = [
    ("detached-factor", lambda x: x * Value(x.data), (1.5,), [False]),
    ("tanh-with-exp-rule", lambda x: Value(math.tanh(x.data), (x,), "exp"), (0.5,), [False]),
    ("output-off-the-graph", lambda x: Value(x.data**2), (1.5,), [False]),
    ("second-input-detached", lambda x, y: x * Value(y.data), (2.0, 3.0), [True, False]),
    ("list-element-detached", lambda ws: ws[0] * 2 + Value(ws[1].data) * 3, ([1.0, 1.0],), [False]),
]


@pytest.mark.parametrize("f, inputs, oks", [pytest.param(*r[1:], id=r[0]) for r in WRONG])
def test_wrong_gradients_fail(f, inputs, oks):
    check = gradcheck(f, *inputs)
    assert not check.ok
    assert [i.ok for i in check.inputs] == oks
    assert check.error > 0.1
    assert "FAILED" in str(check) and "too far apart" in str(check)


def test_worst_element_of_a_list_input_is_reported():
    check = gradcheck(lambda ws: ws[0] * 2 + Value(ws[1].data) * 3, [1.0, 1.0])
    (ws,) = check.inputs
    assert ws.analytic == (2.0, 0.0)
    assert ws.numeric == pytest.approx((2.0, 3.0), rel=1e-8)
    assert ws.error == pytest.approx(1.0)  # |0 - 3| / 3
    assert "analytic 0.0" in str(check)  # the worst element, not the first


def test_detached_factor_gets_half_the_true_gradient():
    (x,) = gradcheck(lambda x: x * Value(x.data), 1.5).inputs
    assert x.analytic == (1.5,)
    assert x.numeric[0] == pytest.approx(3.0, rel=1e-8)
    assert x.error == pytest.approx(0.5, rel=1e-8)


# (id, f, x, h, passes): the step size both ways, on the lecture's f(x) = 3x² - 4x + 5.
STEPS = [
    ("lecture-h-1e-6", lambda x: 3 * x**2 - 4 * x + 5, 3.0, 1e-6, True),
    ("lecture-h-1e-13", lambda x: 3 * x**2 - 4 * x + 5, 3.0, 1e-13, False),  # rounding
    ("cube-h-1e-6", lambda x: x**3, 1.5, 1e-6, True),
    ("cube-h-0.1", lambda x: x**3, 1.5, 0.1, False),  # truncation: the curvature shows
    ("tanh-h-1e-13", lambda x: x.tanh(), 0.5, 1e-13, False),
]


@pytest.mark.parametrize("f, x, h, ok", [pytest.param(*r[1:], id=r[0]) for r in STEPS])
def test_step_size(f, x, h, ok):
    check = gradcheck(f, x, h=h)
    assert check.ok is ok, str(check)
    assert check.h == h


def test_too_small_h_loses_digits_to_rounding():
    good = gradcheck(lambda x: 3 * x**2 - 4 * x + 5, 3.0, h=1e-6)
    tiny = gradcheck(lambda x: 3 * x**2 - 4 * x + 5, 3.0, h=1e-13)
    assert good.inputs[0].analytic == tiny.inputs[0].analytic == (14.0,)
    assert tiny.error > 1e-4  # f(x+h) - f(x-h) keeps only a few digits of 20.0
    assert good.error * 1e4 < tiny.error


def test_central_difference_of_a_cube_is_off_by_h_squared():
    check = gradcheck(lambda x: x**3, 1.5, h=0.1)
    (x,) = check.inputs
    assert x.numeric[0] == pytest.approx(3 * 1.5**2 + 0.1**2, rel=1e-12)
    assert x.error == pytest.approx(0.01 / 6.76, rel=1e-9)


def test_nan_gradient_fails_with_infinite_error():
    check = gradcheck(lambda x: (x - 2.0).log(), 1.0)  # log of a negative number: NaN
    assert not check.ok
    assert check.error == math.inf


def test_caller_values_are_not_touched():
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    check = gradcheck(lambda x, ys: x * ys[0], a, [b])
    assert [i.analytic for i in check.inputs] == [(3.0,), (2.0,)]
    assert (a.grad, b.grad, a.data, b.data) == (0.0, 0.0, 2.0, 3.0)


def test_tolerance_decides_ok():
    f = lambda x: x * Value(x.data)  # noqa: E731 - error is exactly 0.5
    assert not gradcheck(f, 1.5, tol=0.49).ok
    assert gradcheck(f, 1.5, tol=0.51).ok


BAD_ARGUMENTS = [
    ("f-not-callable", lambda: gradcheck(3.0, 1.0), TypeError, r"f must be a function"),
    ("no-inputs", lambda: gradcheck(lambda x: x), ValueError, r"at least one input"),
    ("h-zero", lambda: gradcheck(lambda x: x, 1.0, h=0), ValueError, r"h must be .*got 0"),
    ("h-negative", lambda: gradcheck(lambda x: x, 1.0, h=-1e-6), ValueError, r"got -1e-06"),
    ("h-nan", lambda: gradcheck(lambda x: x, 1.0, h=math.nan), ValueError, r"h must .*got nan"),
    ("h-str", lambda: gradcheck(lambda x: x, 1.0, h="1e-6"), ValueError, r"got '1e-6'"),
    ("h-bool", lambda: gradcheck(lambda x: x, 1.0, h=True), ValueError, r"h must .*got True"),
    ("tol-zero", lambda: gradcheck(lambda x: x, 1.0, tol=0.0), ValueError, r"tol must be"),
    ("input-str", lambda: gradcheck(lambda x: x, "a"), TypeError, r"input 0 must be a number"),
    ("input-empty", lambda: gradcheck(lambda x: x, 1.0, []), ValueError, r"input 1 is an empty"),
    ("input-nan", lambda: gradcheck(lambda x: x, math.nan), ValueError, r"need finite inputs"),
    ("input-nested", lambda: gradcheck(lambda x: x, [[1.0]]), TypeError, r"got list \[1.0\]"),
    ("returns-float", lambda: gradcheck(lambda x: x.data, 1.0), TypeError, r"f must return a"),
]


@pytest.mark.parametrize(
    "call, error, message", [pytest.param(*r[1:], id=r[0]) for r in BAD_ARGUMENTS]
)
def test_bad_arguments_raise_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_docstring_examples_hold():
    assert doctest.testmod(check_module).failed == 0
