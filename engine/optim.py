"""Optimizers and learning-rate schedules.

    >>> from gradtrace.engine import MLP
    >>> model = MLP(2, [4, 1], seed=0)
    >>> opt = SGD(model.parameters(), lr=linear_decay(1.0, 0.1, steps=100))
    >>> opt.lr            # step 0 of micrograd's demo: 1.0 - 0.9*0/100
    1.0

``lr`` is a number or a schedule: a function of the step index. ``opt.lr`` is
the rate the next ``step()`` will use, so a training loop can log it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from gradtrace.engine.value import Value

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    """The same rate at every step."""
    return lambda k: lr


def linear_decay(start: float, end: float, steps: int) -> Schedule:
    """From ``start`` to ``end`` over ``steps``.

    micrograd's demo schedule is ``linear_decay(1.0, 0.1, 100)``.
    """
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    return lambda k: start + (end - start) * k / steps  # 1.0 - 0.9*k/steps


def step_decay(lr: float, every: int, factor: float = 0.1) -> Schedule:
    """Multiply by ``factor`` every ``every`` steps."""
    if every <= 0:
        raise ValueError(f"every must be positive, got {every}")
    return lambda k: lr * factor ** (k // every)


def cosine(start: float, steps: int, end: float = 0.0) -> Schedule:
    """Cosine annealing from ``start`` to ``end`` over ``steps``."""
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    return lambda k: end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))


class Optimizer:
    """Common bookkeeping: the parameters, the schedule and the step counter."""

    def __init__(self, params: Sequence[Value], lr: float | Schedule):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        self.schedule: Schedule = lr if callable(lr) else constant(float(lr))
        self.steps = 0

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.schedule(self.steps)

    def spec(self) -> dict[str, Any]:
        """What an update does, as JSON (the recorder stores it so updates can be checked).

        The learning rate is not in it: a schedule is a function; the recorder
        stores the rate each step used.
        """
        return {"type": type(self).__name__}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        self._update(self.lr)
        self.steps += 1

    def _update(self, lr: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= lr * (grad + wd*p)``, with optional (heavy-ball) momentum as in PyTorch."""

    def __init__(
        self,
        params: Sequence[Value],
        lr: float | Schedule = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity = [0.0] * len(self.params)

    def spec(self) -> dict[str, Any]:
        return {"type": "SGD", "momentum": self.momentum, "weight_decay": self.weight_decay}

    def _update(self, lr: float) -> None:
        mu, wd, vel = self.momentum, self.weight_decay, self.velocity
        for i, p in enumerate(self.params):
            g = p.grad + wd * p.data if wd else p.grad
            if mu:
                vel[i] = g = mu * vel[i] + g
            p.data -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

        >>> p = Value(1.0); p.grad = 0.5
        >>> opt = Adam([p], lr=0.1); opt.step(); p.data   # the first step moves lr
        0.900000002

    ``weight_decay`` is L2 added to the gradient; :class:`AdamW` decouples it.
    """

    def __init__(
        self,
        params: Sequence[Value],
        lr: float | Schedule = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)

    def spec(self) -> dict[str, Any]:
        return {
            "type": "Adam",
            "betas": [self.beta1, self.beta2],
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }

    def _update(self, lr: float) -> None:
        b1, b2, wd = self.beta1, self.beta2, self.weight_decay
        t = self.steps + 1
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        for i, p in enumerate(self.params):
            g = p.grad + wd * p.data if wd else p.grad
            self.m[i] = m = b1 * self.m[i] + (1.0 - b1) * g
            self.v[i] = v = b2 * self.v[i] + (1.0 - b2) * g * g
            p.data -= lr * (m / c1) / (math.sqrt(v / c2) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

        >>> p = Value(1.0); p.grad = 0.0
        >>> AdamW([p], lr=0.1, weight_decay=0.5).step(); p.data   # 1 * (1 - 0.1*0.5)
        0.95

    Each step first shrinks every parameter by ``1 - lr * weight_decay``, then
    takes Adam's step on the plain gradient: the decay is not divided by the
    second moment, as it is when it is added to the gradient (:class:`Adam`).
    torch's default ``weight_decay`` is 0.01, and so is this one.
    """

    def __init__(
        self,
        params: Sequence[Value],
        lr: float | Schedule = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "type": "AdamW"}

    def _update(self, lr: float) -> None:
        b1, b2 = self.beta1, self.beta2
        t = self.steps + 1
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        decay = 1.0 - lr * self.weight_decay
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = m = b1 * self.m[i] + (1.0 - b1) * g
            self.v[i] = v = b2 * self.v[i] + (1.0 - b2) * g * g
            p.data = p.data * decay - lr * (m / c1) / (math.sqrt(v / c2) + self.eps)
