"""The demo runs: micrograd's moons classifier and the lecture's 4-sample toy net.

    >>> run_id = train("moons", steps=100, db="runs.db")     # doctest: +SKIP

Both are ordinary training loops with the three recording lines added; they
are what ``gradtrace demo`` runs and what the tests and benchmarks record.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gradtrace.engine import MLP, SGD, Value, hinge, l2, linear_decay, make_moons, mse, toy
from gradtrace.tracer.recording.recorder import record

DEMOS = ("moons", "toy")


def moons_loss(
    model: MLP, X: list[list[float]], y: list[int], alpha: float = 1e-4
) -> tuple[Value, float]:
    """micrograd's demo loss: SVM max-margin hinge + L2, and the accuracy."""
    scores = [model([Value(a), Value(b)]) for a, b in X]
    loss = hinge(scores, y) + l2(model.parameters(), alpha)
    acc = sum((t > 0) == (s.data > 0) for t, s in zip(y, scores, strict=True)) / len(y)
    return loss, acc


def toy_loss(model: MLP, X: list[list[float]], y: list[float]) -> tuple[Value, float]:
    """The lecture's loop: mean squared error of a tanh MLP on four samples."""
    preds = [model([Value(v) for v in row]) for row in X]
    loss = mse(preds, y)
    acc = sum((t > 0) == (p.data > 0) for t, p in zip(y, preds, strict=True)) / len(y)
    return loss, acc


def setup(
    kind: str, steps: int, seed: int
) -> tuple[MLP, Callable[[], tuple[Value, float]], SGD, dict[str, Any]]:
    """The model, its loss closure, the optimizer and the config of a demo."""
    if kind == "moons":
        X, y = make_moons(100, noise=0.1, seed=seed)
        model = MLP(2, [16, 16, 1], activation="relu", seed=seed)
        opt = SGD(model.parameters(), lr=linear_decay(1.0, 0.1, steps))
        config = {
            "data": "make_moons(100, noise=0.1)",
            "model": "MLP(2, [16, 16, 1], relu)",
            "loss": "hinge + 1e-4 L2",
            "optimizer": "SGD",
            "lr": "linear 1.0 -> 0.1",
            "steps": steps,
        }
        return model, lambda: moons_loss(model, X, y), opt, config
    if kind == "toy":
        X, y = toy()
        model = MLP(3, [4, 4, 1], activation="tanh", seed=seed)
        opt = SGD(model.parameters(), lr=0.1)
        config = {
            "data": "lecture 4 samples",
            "model": "MLP(3, [4, 4, 1], tanh)",
            "loss": "mse",
            "optimizer": "SGD",
            "lr": 0.1,
            "steps": steps,
        }
        return model, lambda: toy_loss(model, X, y), opt, config
    raise ValueError(f"unknown demo {kind!r}; choose one of {DEMOS}")


def train(
    kind: str = "moons",
    steps: int = 100,
    db: str | os.PathLike | None = None,
    seed: int = 1337,
    name: str | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    **record_options: Any,
) -> str:
    """Train a demo while recording it; returns the run id.

    ``progress(step, loss, acc)`` is called after every step (the CLI's bar).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    model, loss_fn, opt, config = setup(kind, steps, seed)
    with record(
        name or kind, db, experiment="demo", config=config, seed=seed, **record_options
    ) as run:
        loop(run, model, loss_fn, opt, steps, progress)
    return run.id


def loop(
    run: Any,
    model: Any,
    loss_fn: Callable[[], tuple[Value, float]],
    opt: Any,
    steps: int,
    progress: Callable[[int, float, float], None] | None = None,
) -> None:
    """The demo's training loop, recorded into ``run``: the three added lines of the README.

        model, loss_fn, opt, config = setup("moons", 100, 1337)
        with record("moons", "runs.db", config=config) as run:
            loop(run, model, loss_fn, opt, 100)
    """
    run.watch(model, optimizer=opt)
    for k in range(steps):
        loss, acc = loss_fn()
        model.zero_grad()
        loss.backward()
        run.log(loss, acc=acc, lr=opt.lr)
        opt.step()
        if progress is not None:
            progress(k, loss.data, acc)
