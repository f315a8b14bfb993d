"""When a run started going wrong: the first step where the loss or a layer's
gradient norm blew up, or an update outgrew the weights it changed.

    >>> run = tracer.connect("runs.db").run("moons-lr1e4")  # doctest: +SKIP
    >>> run.onset().story                                    # doctest: +SKIP
    'It started going wrong at step 0: the update moved layer 0 by 2.1e+03x its size ...'

The first NaN/inf (``forensics``) is the symptom; the onset is often steps
before it, while every number is still finite but already absurd. The signals,
in the order they happen within a step:

- ``loss``: the loss reached more than ``factor`` times the largest ``|loss|``
  of every earlier logged step;
- ``gradient``: a layer's gradient norm (L2 over its parameters) reached more
  than ``factor`` times its largest norm at every earlier logged step;
- ``update``: the update/data ratio ``‖w' - w‖ / ‖w‖`` of a layer passed 1: the
  step's update (to the next logged step) was larger than the weights it
  changed.

Comparing with the largest earlier value, not the previous one, keeps a healthy
run's small late gradients from counting as growth when they bounce back. The
onset is the earliest signal; :attr:`Onset.signals` holds the first of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from gradtrace.tracer.display import number
from gradtrace.tracer.errors import InvalidArgument

FACTOR = 10.0
KINDS = ("loss", "gradient", "update")  # the order they happen in a step


@dataclass(frozen=True)
class Signal:
    """One sign of trouble: at ``step``, ``what`` (``"loss"``, ``"layer 1"``) had
    ``value`` against ``reference`` (its largest earlier value; for an update the
    norm of the weights it changed), ``ratio`` times it."""

    step: int
    kind: str
    what: str
    value: float
    reference: float

    @property
    def ratio(self) -> float:
        """How many times the reference the value is."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(self.value) / np.float64(self.reference))

    @property
    def text(self) -> str:
        """The signal in words."""
        x = f"{number(self.ratio, 2)}x"
        if self.kind == "update":
            return (
                f"the update of step {self.step} moved {self.what} by {x} its size "
                "(update/data ratio above 1)"
            )
        thing = "the loss" if self.kind == "loss" else f"the gradient norm of {self.what}"
        return (
            f"{thing} reached {number(self.value, 3)} at step {self.step}, {x} its largest "
            f"before ({number(self.reference, 3)})"
        )


@dataclass(frozen=True)
class Onset:
    """When a run started going wrong (see the module docstring): the earliest
    :class:`Signal`'s ``step``, ``kind`` and ``what``; ``signals`` the first of each
    kind and layer, earliest first; ``story`` in words."""

    signals: tuple[Signal, ...]

    @property
    def first(self) -> Signal:
        return self.signals[0]

    @property
    def step(self) -> int:
        return self.first.step

    @property
    def kind(self) -> str:
        return self.first.kind

    @property
    def what(self) -> str:
        return self.first.what

    @property
    def story(self) -> str:
        """``It started going wrong at step 0: ... By step 1 the loss ...``"""
        text = f"It started going wrong at step {self.step}: {self.first.text}."
        loss = next((s for s in self.signals if s.kind == "loss"), None)
        if loss is not None and loss is not self.first:
            text += f" Then {loss.text}."
        return text


def onset(run: Any, factor: float = FACTOR, until: int | None = None) -> Onset | None:
    """When ``run`` (a ``RunView``) started going wrong, or None if no signal fired.

        >>> onset(run).step, onset(run).kind                   # doctest: +SKIP
        (0, 'update')

    ``until`` stops at that step (the first NaN/inf: what comes after is noise)."""
    if not (isinstance(factor, (int, float)) and 1 < factor < math.inf):
        raise InvalidArgument(
            f"factor={factor!r}: pass how many times bigger counts as a blow-up, above 1 (e.g. 10)"
        )
    metrics = run.metrics()
    if until is not None:
        metrics = metrics[metrics.index <= until]
    steps = metrics.index.to_numpy(dtype=np.int64)
    found: list[Signal] = []
    if "loss" in metrics:
        found += _growth(steps, metrics["loss"].to_numpy(dtype=np.float64), factor, "loss", "loss")
    if len(steps):
        found += _param_signals(run, steps.tolist(), factor)
    if not found:
        return None
    found.sort(key=lambda s: (s.step, KINDS.index(s.kind)))
    return Onset(tuple(found))


def _growth(
    steps: np.ndarray, values: np.ndarray, factor: float, kind: str, what: str
) -> list[Signal]:
    """The first step whose ``|value|`` is above ``factor`` times the largest earlier one."""
    mags = np.abs(values)
    with np.errstate(invalid="ignore"):
        before = np.fmax.accumulate(np.where(np.isnan(mags), -np.inf, mags))  # NaN: skipped
        before = np.concatenate([[np.nan], before[:-1]])
        hit = np.flatnonzero((before > 0) & (mags > factor * before))
    if not len(hit):
        return []
    i = int(hit[0])
    return [Signal(int(steps[i]), kind, what, float(mags[i]), float(before[i]))]


def _param_signals(run: Any, steps: list[int], factor: float) -> list[Signal]:
    """Gradient growth and update/data ratios per layer (its parameters' L2 norms)."""
    params = run.parameters()
    groups = _layers(params)
    out: list[Signal] = []
    grads = run.param_arrays(steps=steps, which="grad")
    if not grads.empty:
        g = grads.to_numpy(dtype=np.float64)
        at = grads.index.to_numpy(dtype=np.int64)
        with np.errstate(over="ignore", invalid="ignore"):
            for what, idx in groups.items():
                out += _growth(at, np.linalg.norm(g[:, idx], axis=1), factor, "gradient", what)
    data = run.param_arrays(steps=steps, which="data")
    if len(data) > 1:
        d = data.to_numpy(dtype=np.float64)
        at = data.index.to_numpy(dtype=np.int64)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for what, idx in groups.items():
                size = np.linalg.norm(d[:-1, idx], axis=1)
                moved = np.linalg.norm(d[1:, idx] - d[:-1, idx], axis=1)
                hit = np.flatnonzero((size > 0) & (moved > size))
                if len(hit):
                    i = int(hit[0])
                    out.append(Signal(int(at[i]), "update", what, float(moved[i]), float(size[i])))
    return out


def _layers(params: pd.DataFrame) -> dict[str, np.ndarray]:
    """``"layer 0"`` -> its parameter indices; parameters outside layers as ``"other"``."""
    layer = params["layer"].to_numpy(dtype=np.float64, na_value=math.nan)
    names = np.where(np.isnan(layer), "other", [f"layer {int(x)}" if x == x else "" for x in layer])
    return {
        str(name): params["idx"].to_numpy(dtype=np.int64)[names == name]
        for name in dict.fromkeys(names.tolist())
    }
