"""Runs whose trouble is known by construction: neurons killed or saturated at a
chosen step, a learning rate or targets that jump at a chosen step.

    >>> run_id = dying_run("sqlite:///runs.db")      # doctest: +SKIP

Each is a small ordinary training loop (mean squared error, SGD, every node
traced) with one deliberate intervention between two steps.
"""

from __future__ import annotations

import warnings

from gradtrace.engine import MLP, SGD, Value, make_moons, mse

from gradtrace import tracer

# (layer, neuron) -> the step before whose forward pass its bias is set, so that
# from that step on every pre-activation is far beyond the inputs' reach
DEAD = {(0, 2): 0, (0, 4): 3}  # ReLU: bias -100, output 0 for every example
SATURATED = {(0, 1): 4}  # tanh: bias +60, |tanh| > 0.97 for every example
DYING_STEPS = 12


def _loop(db, name, model, steps, lr, before_step=None, targets=None, loss_scale=1.0):
    X, y = make_moons(20, noise=0.1, seed=5)
    ys = [float(t) for t in y]
    opt = SGD(model.parameters(), lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a diverging run warns at its first NaN
        with tracer.record(name, db) as run:
            run.watch(model, optimizer=opt)
            for k in range(steps):
                if before_step is not None:
                    before_step(k, model)
                scale = targets(k) if targets is not None else 1.0
                preds = [model([Value(a), Value(b)]) for a, b in X]
                loss = mse(preds, [t * scale for t in ys]) * loss_scale
                model.zero_grad()
                loss.backward()
                run.log(loss, lr=opt.lr)
                opt.step()
    return run.id


def _set_biases(plan: dict[tuple[int, int], int], bias: float):
    def before_step(k: int, model: MLP) -> None:
        for (layer, neuron), at in plan.items():
            if k == at:
                model.layers[layer].neurons[neuron].b.data = bias

    return before_step


def dying_run(db: str, steps: int = DYING_STEPS, loss_scale: float = 1.0) -> str:
    """MLP(2, [6, 1], relu): neurons of :data:`DEAD` die at their step, no other.
    ``loss_scale`` multiplies the loss: every gradient by it, as in a converged run."""
    model = MLP(2, [6, 1], activation="relu", seed=2)
    kill = _set_biases(DEAD, -100.0)
    return _loop(db, "dying", model, steps, 0.05, kill, loss_scale=loss_scale)


def saturating_run(db: str, steps: int = 8) -> str:
    """MLP(2, [5, 1], tanh): the neurons of :data:`SATURATED` saturate at their step."""
    model = MLP(2, [5, 1], activation="tanh", seed=2)
    return _loop(db, "saturating", model, steps, 0.05, _set_biases(SATURATED, 60.0))


LR_JUMP = 5  # the learning rate goes from 0.05 to 1e3 at this step


def lr_jump_run(db: str, steps: int = 8) -> str:
    """A relu MLP whose lr jumps to 1e3 at :data:`LR_JUMP`: that step's update is
    hundreds of times its weights; every earlier step is an ordinary one."""
    model = MLP(2, [6, 1], activation="relu", seed=2)
    return _loop(db, "lr-jump", model, steps, lambda k: 0.05 if k < LR_JUMP else 1e3)


TARGET_JUMP = 4  # the targets are multiplied by 1000 from this step on


def target_jump_run(db: str, steps: int = 7) -> str:
    """Targets scaled by 1000 from :data:`TARGET_JUMP`: the loss jumps ~1e6 times
    there (before any update could)."""
    model = MLP(2, [6, 1], activation="relu", seed=2)
    return _loop(
        db, "target-jump", model, steps, 0.01, targets=lambda k: 1e3 if k >= TARGET_JUMP else 1.0
    )


def healthy_run(db: str, steps: int = 10) -> str:
    """The same net and data trained quietly: no onset, no dead neuron."""
    model = MLP(2, [6, 1], activation="relu", seed=2)
    return _loop(db, "healthy", model, steps, 0.05)
