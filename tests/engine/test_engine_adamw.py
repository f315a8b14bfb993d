"""State on our own Values, AdamW with torch's semantics, and cross_entropy."""

from __future__ import annotations

import gc
import math

import pytest
from gradtrace.engine import MLP, Adam, AdamW, Value, cross_entropy, losses, optim


def test_values_take_extra_attributes_and_make_no_cycles():
    model = MLP(2, [3, 1], seed=0)
    for p in model.parameters():  # the course's AdamW keeps its moments on the parameters
        p.m = 0.0
        p.v = 0.0
    p = model.parameters()[0]
    p.m += 0.5
    assert (p.m, p.v) == (0.5, 0.0)
    assert p.__dict__ == {"m": 0.5, "v": 0.0}

    def step() -> None:
        loss = model([Value(0.5), Value(-1.0)]) ** 2
        loss.backward()

    assert _values_only_the_cycle_collector_frees(step) == 0
    with pytest.raises(AttributeError):
        _ = Value(1.0).m  # an attribute never set is still an error


def test_the_cycle_count_finds_a_value_in_a_cycle():
    # The guard above can fail: a Value holding itself in an attribute is counted.
    def step() -> None:
        ring = Value(1.0)
        ring.me = ring

    assert _values_only_the_cycle_collector_frees(step) == 3


def _values_only_the_cycle_collector_frees(step) -> int:
    """Run `step` three times; count the Values left for the cycle collector.

    Counts Values, not all garbage: other threads of the test process (a dashboard
    server left by an earlier test) make cyclic garbage of their own meanwhile.
    """
    enabled, debug = gc.isenabled(), gc.get_debug()
    gc.disable()
    try:
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collector finds, to look at it
        for _ in range(3):
            step()
        gc.collect()
        return sum(isinstance(thing, Value) for thing in gc.garbage)
    finally:
        gc.set_debug(debug)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def test_adamw_decays_the_weights_apart_from_the_moments():
    # With no gradient Adam's moments stay 0 and its step is 0: AdamW only shrinks each
    # weight by 1 - lr*wd a step, exactly; Adam's L2 goes through the moments instead
    # and moves the weight by about lr a step whatever its size.
    p, q = Value(100.0), Value(100.0)
    adamw, adam = AdamW([p], lr=0.1, weight_decay=0.5), Adam([q], lr=0.1, weight_decay=0.5)
    expected = 100.0
    for _ in range(5):
        p.grad = q.grad = 0.0
        adamw.step()
        adam.step()
        expected *= 1.0 - 0.1 * 0.5
        assert p.data == expected
    assert abs(q.data - (100.0 - 5 * 0.1)) < 1e-3 and p.data < 78.0
    assert adamw.spec() == {"type": "AdamW", "betas": [0.9, 0.999], "eps": 1e-8,
                            "weight_decay": 0.5}  # fmt: skip
    assert AdamW([p]).weight_decay == 0.01  # torch's default


def test_adamw_follows_torch_with_bias_correction():
    # A constant gradient g: torch's bias-corrected moments are exactly g and g*g at
    # every step, so each step is theta*(1 - lr*wd) - lr*g/(|g| + eps).
    g, lr, wd, eps = -0.3, 0.01, 0.1, 1e-8
    p = Value(1.0)
    opt = AdamW([p], lr=lr, betas=(0.8, 0.99), eps=eps, weight_decay=wd)
    theta = 1.0
    for _ in range(6):
        p.grad = g
        opt.step()
        theta = theta * (1 - lr * wd) - lr * g / (abs(g) + eps)
        assert math.isclose(p.data, theta, rel_tol=1e-13)
    assert opt.m[0] == pytest.approx(g * (1 - 0.8**6), rel=1e-13)


def test_cross_entropy_is_softmax_nll_with_its_exact_gradient():
    logits = [Value(2.0), Value(-1.0), Value(0.5)]
    loss = cross_entropy(logits, 2)
    loss.backward()
    z = sum(math.exp(v.data) for v in logits)
    assert math.isclose(loss.data, math.log(z) - 0.5, rel_tol=1e-15)
    softmax = [math.exp(v.data) / z for v in logits]
    want = [s - (1.0 if i == 2 else 0.0) for i, s in enumerate(softmax)]
    for v, w in zip(logits, want):
        assert math.isclose(v.grad, w, rel_tol=1e-14, abs_tol=1e-16)
    big = cross_entropy([Value(1000.0), Value(0.0)], 1)  # exp(1000) would overflow
    assert math.isclose(big.data, 1000.0, rel_tol=1e-15)
    assert losses.cross_entropy is cross_entropy and optim.AdamW is AdamW


@pytest.mark.parametrize("target", [3, -1, 1.0, True])
def test_cross_entropy_refuses_a_target_that_is_not_a_class(target):
    with pytest.raises(ValueError, match="class index from 0 to 2"):
        cross_entropy([Value(0.0)] * 3, target)
