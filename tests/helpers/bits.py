"""A run whose metrics, gradients and values go through every special float."""

from __future__ import annotations

import math
import struct

from gradtrace.engine import Value, structure

from gradtrace import tracer


def f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


NAN_PAYLOAD = f64(0x7FF8_0000_0000_1234)  # a quiet NaN carrying a payload
NEG_NAN = f64(0xFFF8_0000_0000_0000)  # -nan
SNAN = f64(0x7FF0_0000_0000_0001)  # signalling NaN
SPECIALS = [
    0.1,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    NAN_PAYLOAD,
    NEG_NAN,
    SNAN,
    5e-324,
    -1.7976931348623157e308,
    0.0,
]


def record_bits_run(db: str, name: str = "bits", steps: int = 6, **options) -> dict:
    """A 3-parameter run whose metrics, gradients and values go through every special
    float; returns what was true in the process at each log."""
    w = [Value(0.5), Value(-1.5), Value(0.25)]
    x = Value(2.0, label="x")
    log: dict[str, list] = {k: [] for k in ("metrics", "before", "grad", "after", "lr", "nodes")}
    with tracer.record(name, db=db, experiment="bits", config={"k": [1, 2]}, **options) as run:
        run.watch(w)
        for k in range(steps):
            loss = ((w[0] * x + w[1]).tanh() - w[2]) ** 2
            for p in w:
                p.grad = 0.0
            loss.backward()
            if k == 1:
                w[1].grad, w[2].grad = -0.0, NAN_PAYLOAD
            if k == 3:
                w[0].grad, w[1].grad, w[2].grad = math.inf, SNAN, 5e-324
            nodes = structure(loss)[0]
            log["nodes"].append(([v.data for v in nodes], [v.grad for v in nodes]))
            lr = SPECIALS[(k + 4) % len(SPECIALS)] if k % 2 else 0.01
            metrics = {"m_special": SPECIALS[k], "m_other": SPECIALS[-1 - k]}
            run.log(loss, lr=lr, **metrics)
            log["metrics"].append({"loss": loss.data, "lr": lr, **metrics})
            log["lr"].append(lr)
            log["before"].append([p.data for p in w])
            log["grad"].append([p.grad for p in w])
            for p in w:
                p.data = p.data - 0.01 * p.grad
            if k == 2:
                w[0].data, w[1].data, w[2].data = -0.0, SNAN, NAN_PAYLOAD
            if k == 4:
                w[0].data, w[1].data, w[2].data = math.inf, -0.0, NEG_NAN
            log["after"].append([p.data for p in w])
    log["id"] = run.id
    return log
