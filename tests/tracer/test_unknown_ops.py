"""Ops the engine's table does not know (a foreign op recorded as written): forensics
and verify say what they cannot judge or re-compute, and never blame the wrong node."""

from __future__ import annotations

import math

import numpy as np
from gradtrace.tracer.analysis.forensics import step_origin
from gradtrace.tracer.analysis.origintypes import NodeTrace, StepData
from gradtrace.tracer.analysis.verify import cannot_check, recompute

NAN = math.nan


def trace(rows: list[tuple], grads: list[float]) -> NodeTrace:
    """rows: (op, a, b, arg, value) per node in topological order."""
    ops, a, b, args, values = zip(*rows, strict=True)
    return NodeTrace(
        ops=np.asarray(ops, dtype=str),
        a=np.asarray(a, dtype=np.int64),
        b=np.asarray(b, dtype=np.int64),
        args=np.asarray(args, dtype=np.float64),
        labels=[""] * len(rows),
        params=np.full(len(rows), -1, dtype=np.int64),
        values=np.asarray(values, dtype=np.float64),
        grads=np.asarray(grads, dtype=np.float64),
    )


def test_an_unknown_op_whose_operand_got_inf_is_named_as_not_judged():
    # x -> sin(x) -> * w -> root; the gradient sin's rule sent to x is inf
    nodes = trace(
        [("", -1, -1, NAN, 0.5), ("sin", 0, -1, NAN, math.sin(0.5)), ("", -1, -1, NAN, 3.0),
         ("*", 1, 2, NAN, 3.0 * math.sin(0.5))],
        [math.inf, 3.0, math.sin(0.5), 1.0],
    )  # fmt: skip
    origin = step_origin(StepData(step=4, nodes=nodes))
    assert (origin.kind, origin.node, origin.op) == ("backward", 1, "sin")
    assert "`sin`" in origin.story and "cannot judge" in origin.story
    assert "node 0 has gradient inf" in origin.story


def test_a_known_rule_after_an_unknown_op_is_still_blamed():
    # x -> sin(x) -> * 1e200 -> root with grad 1e200: `*` sends 1e200 * 1e200 = inf to sin
    nodes = trace(
        [("", -1, -1, NAN, 0.5), ("sin", 0, -1, NAN, 0.25), ("", -1, -1, NAN, 1e200),
         ("*", 1, 2, NAN, 0.25e200)],
        [math.inf, math.inf, 0.25e200, 1e200],
    )  # fmt: skip
    origin = step_origin(StepData(step=0, nodes=nodes))
    assert (origin.kind, origin.node, origin.op) == ("backward", 3, "*")
    assert "sent inf to node 1" in origin.story


def test_an_unknown_op_is_not_taken_for_a_rule_that_sent_nan():
    # Before the op table, an op missing from forensics' own rules "sent" NaN and was
    # blamed; here sin's grad and its operand's are finite, the stale one is the leaf w.
    nodes = trace(
        [("", -1, -1, NAN, 0.5), ("sin", 0, -1, NAN, 0.25), ("", -1, -1, NAN, 2.0),
         ("*", 1, 2, NAN, 0.5)],
        [2.0, 2.0, math.inf, 1.0],
    )  # fmt: skip
    origin = step_origin(StepData(step=0, nodes=nodes))
    assert (origin.kind, origin.node) == ("backward", 2)
    assert "non-finite before backward()" in origin.story


def test_recompute_feeds_an_unknown_op_its_recorded_value_and_skips_what_it_cannot_check():
    # x, w leaves; s = sin(x); y = s * w; z = y + x
    x, w = 0.5, 3.0
    s = math.sin(x)
    y = s * w
    rows = [("", -1, -1), ("sin", 0, -1), ("", -1, -1), ("*", 1, 2), ("+", 3, 0)]
    ops, a, b = (list(c) for c in zip(*rows, strict=True))
    recorded = [x, s, w, y, y + x]
    values, grads = recompute(ops, a, b, [NAN] * 5, recorded)
    unchecked_v, unchecked_g = cannot_check(ops, a, b)
    assert values.tolist() == recorded
    assert grads[1:].tolist() == [w, s, 1.0, 1.0]  # the nodes downstream of sin are exact
    assert unchecked_v.tolist() == [False, True, False, False, False]  # sin's own value
    # x's gradient misses what sin's rule sent it: not checked; w's and the rest are
    assert unchecked_g.tolist() == [True, False, False, False, False]
