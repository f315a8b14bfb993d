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
    """Common bookkeeping: the parameters, the schedule, the step counter, the state.

    An optimizer is one method, :meth:`rule`: a parameter's new value (and new
    state) from its value, gradient, the rate and the step number. ``step()``
    applies it to every parameter; ``gradtrace verify`` applies the very same rule
    to a recording's numpy arrays (``xp=numpy``), so a rule must use only ``+ - *
    /``, ``**`` of Python floats and ``xp.sqrt``: IEEE operations that give the
    same bits on floats and arrays. Adding an optimizer is a subclass with
    ``state_names`` (its per-parameter state, each starting at 0.0), the
    ``rule``, and a ``spec()`` whose keys besides ``type`` are its constructor's
    keyword arguments (:func:`from_spec` rebuilds it from them).
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, params: Sequence[Value], lr: float | Schedule):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        self.schedule: Schedule = lr if callable(lr) else constant(float(lr))
        self.steps = 0
        for name in self.state_names:  # one list per state, e.g. self.velocity[i]
            setattr(self, name, [0.0] * len(self.params))

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
        """Update every parameter by :meth:`rule` with the current rate."""
        lr, t, rule = self.lr, self.steps + 1, self.rule
        columns = [getattr(self, name) for name in self.state_names]
        for i, p in enumerate(self.params):
            p.data, *new = rule(p.data, p.grad, lr, t, *(c[i] for c in columns))
            for c, x in zip(columns, new):
                c[i] = x
        self.steps += 1

    def rule(self, p: Any, g: Any, lr: float, t: int, *state: Any, xp: Any = math) -> tuple:
        """``(new p, *new state)`` for value ``p``, gradient ``g``, rate ``lr`` at step
        ``t`` (1 for the first update); floats, or numpy arrays with ``xp=numpy``."""
        raise NotImplementedError  # pragma: no cover - abstract


class SGD(Optimizer):
    """``p -= lr * (grad + wd*p)``, with optional (heavy-ball) momentum as in PyTorch."""

    state_names = ("velocity",)

    def __init__(
        self,
        params: Sequence[Value],
        lr: float | Schedule = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay

    def spec(self) -> dict[str, Any]:
        return {"type": "SGD", "momentum": self.momentum, "weight_decay": self.weight_decay}

    def rule(self, p, g, lr, t, velocity, xp=math):
        mu, wd = self.momentum, self.weight_decay
        if wd:
            g = g + wd * p
        if mu:
            velocity = g = mu * velocity + g
        return p - lr * g, velocity


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

        >>> p = Value(1.0); p.grad = 0.5
        >>> opt = Adam([p], lr=0.1); opt.step(); p.data   # the first step moves lr
        0.900000002

    ``weight_decay`` is L2 added to the gradient; :class:`AdamW` decouples it.
    """

    state_names = ("m", "v")
    default_weight_decay = 0.0  # AdamW's is torch's, 0.01

    def __init__(
        self,
        params: Sequence[Value],
        lr: float | Schedule = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
    ):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = self.default_weight_decay if weight_decay is None else weight_decay

    def spec(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "betas": [self.beta1, self.beta2],
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }

    def rule(self, p, g, lr, t, m, v, xp=math):
        if self.weight_decay:
            g = g + self.weight_decay * p  # L2: the decay goes through the moments
        step, m, v = self._step(g, lr, t, m, v, xp)
        return p - step, m, v

    def _step(self, g, lr, t, m, v, xp):
        """The moments after gradient ``g``, and the step they take."""
        b1, b2 = self.beta1, self.beta2
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        # lr * m_hat / (sqrt(v_hat) + eps), bias-corrected: m_hat = m / (1 - b1**t), v likewise
        return lr * (m / (1.0 - b1**t)) / (xp.sqrt(v / (1.0 - b2**t)) + self.eps), m, v


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

    default_weight_decay = 0.01

    def rule(self, p, g, lr, t, m, v, xp=math):
        step, m, v = self._step(g, lr, t, m, v, xp)
        return p * (1.0 - lr * self.weight_decay) - step, m, v


def from_spec(spec: Any) -> Optimizer | None:
    """The optimizer a recorded ``spec()`` describes, to re-compute its updates
    with :meth:`Optimizer.rule`; None if it names no optimizer of this module.

        >>> from_spec({"type": "SGD", "momentum": 0.9, "weight_decay": 0.0}).momentum
        0.9
    """
    kinds = {cls.__name__: cls for cls in _subclasses(Optimizer)}
    if not isinstance(spec, dict) or spec.get("type") not in kinds:
        return None
    options = {k: v for k, v in spec.items() if k != "type"}
    # A stand-in parameter: a rule reads only the numbers it is given.
    return kinds[spec["type"]]([Value(0.0)], lr=0.0, **options)


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]
