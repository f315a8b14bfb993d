"""Small recorded runs for the diff, verify and compare tests (not a test module).

Every run is the same seeded moons loop; the knobs change one thing on purpose, so
a test knows exactly where two runs must part.
"""

from __future__ import annotations

import math

from gradtrace.engine import SGD, constant

from gradtrace import tracer
from helpers.trace import N_POINTS, batch_loss, small_model

LR = 0.1


def record_run(
    url: str,
    name: str,
    *,
    steps: int = 50,
    seed: int = 0,
    lr_from: tuple[int, float] | None = None,
    perturb: tuple[int, int] | None = None,
    lr: float = LR,
    capture: str = "nodes",
    points: int = N_POINTS,
    lr_growth: float = 1.0,
    config: dict | None = None,
) -> str:
    """Record ``steps`` SGD steps; returns the run id.

    ``lr_from=(k, lr2)`` switches the learning rate to ``lr2`` from step k on (step
    k's update is the first to use it); ``perturb=(k, i)`` moves parameter i up by
    one ulp just before step k's forward pass; ``points`` is the data set size;
    ``lr_growth=g`` multiplies the rate by g every step (a run that explodes);
    ``config`` replaces the run's config (by default its learning rate(s)).
    """
    model, X, y = small_model(seed, points)
    params = model.parameters()
    opt = SGD(params, lr=lr if lr_growth == 1.0 else (lambda k: lr * lr_growth**k))
    if config is None:
        config = {"lr": lr} if lr_from is None else {"lr": lr, "lr_from": list(lr_from)}
    with tracer.record(name, db=url, seed=seed, config=config, capture=capture) as run:
        run.watch(model, optimizer=opt)
        for k in range(steps):
            if lr_from is not None and k == lr_from[0]:
                opt.schedule = constant(lr_from[1])
            if perturb is not None and k == perturb[0]:
                p = params[perturb[1]]
                p.data = math.nextafter(p.data, math.inf)
            loss, acc = batch_loss(model, X, y)
            model.zero_grad()
            loss.backward()
            run.log(loss, acc=acc)
            opt.step()
    return run.id
