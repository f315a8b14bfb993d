"""Each optimizer's update is written once, in its ``rule``: ``step()`` applies it to
Values and ``gradtrace verify`` to numpy arrays; both must give the same bits."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from gradtrace.engine import Value, optim

# Every optimizer in optim (a new one is picked up), with settings that use each branch.
KINDS = {cls.__name__: cls for cls in optim._subclasses(optim.Optimizer)}
SETTINGS = {
    "SGD": [{}, {"momentum": 0.9, "weight_decay": 0.01}],
    "Adam": [{}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}],
    "AdamW": [{}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}],
}


def cases():
    for name, cls in KINDS.items():
        for i, options in enumerate(SETTINGS.get(name, [{}])):
            yield pytest.param(cls, options, id=f"{name}-{i}")


def bits(xs) -> list[bytes]:
    return [struct.pack("<d", float(x)) for x in xs]


@pytest.mark.parametrize(("cls", "options"), cases())
def test_step_on_values_and_the_rule_on_arrays_give_the_same_bits(cls, options):
    rng = random.Random(7)
    params = [Value(rng.uniform(-2, 2)) for _ in range(40)]
    opt = cls(params, lr=lambda k: 0.05 / (1 + k), **options)
    replay = optim.from_spec(opt.spec())
    assert type(replay) is cls and replay.spec() == opt.spec()
    p = np.array([v.data for v in params])
    state = [np.zeros(len(params)) for _ in replay.state_names]
    for t in range(1, 13):
        for v in params:
            v.grad = rng.gauss(0.0, 10.0 ** rng.uniform(-6, 3))
        g = np.array([v.grad for v in params])
        lr = opt.lr
        opt.step()
        p, *state = replay.rule(p, g, lr, t, *state, xp=np)
        assert bits(p) == bits(v.data for v in params), t
        for name, column in zip(replay.state_names, state, strict=True):
            assert bits(column) == bits(getattr(opt, name)), (t, name)


def test_from_spec_knows_only_the_optimizers_of_optim():
    assert optim.from_spec({"type": "Lion"}) is None
    assert optim.from_spec(None) is None
    sgd = optim.from_spec({"type": "SGD", "momentum": 0.9, "weight_decay": 0.0})
    assert (sgd.momentum, sgd.weight_decay) == (0.9, 0.0)
