"""Gradient checking: ``backward()`` against central differences, per input.

    >>> from gradtrace.engine import Value, gradcheck
    >>> check = gradcheck(lambda x, w: (x * w).tanh(), 2.0, -0.3)
    >>> check.ok, check.error < 1e-9
    (True, True)
    >>> gradcheck(lambda x: x * Value(x.data), 1.5).ok  # one factor cut off the graph
    False

``f`` is called with fresh leaves holding the inputs' numbers (a list of leaves
for a list input), so the caller's own Values are never touched. For every input
number ``x`` the numeric derivative is ``(f(x + h) - f(x - h)) / 2h``; its error
against the analytic one is relative, ``|a - n| / max(|a|, |n|, 1)``: below 1 in
magnitude the difference counts as it is, so a true zero whose difference
quotient is a rounding residue still passes. Each input reports its worst
element, as ``torch.autograd.gradcheck`` reports the worst entry of a tensor.

The step ``h`` matters both ways: too large and the curvature of ``f`` shows
(truncation error grows like h²), too small and ``f(x + h) - f(x - h)`` loses
its digits to rounding (the error grows like 1/h). The default suits inputs and
outputs of order 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Union

from gradtrace.engine.value import Value

Input = Union[float, Value, Sequence[Union[float, Value]]]


@dataclass(frozen=True)
class InputCheck:
    """One argument of ``f``: d f / d element by ``backward()`` and by differences."""

    position: int  # which argument of f
    analytic: tuple[float, ...]  # one per element; a scalar argument has one
    numeric: tuple[float, ...]
    error: float  # the worst element's relative error
    ok: bool  # error <= the check's tolerance


@dataclass(frozen=True)
class GradCheck:
    """What :func:`gradcheck` found; ``ok`` when every input is within ``tol``."""

    inputs: tuple[InputCheck, ...]
    h: float
    tol: float

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.inputs)

    @property
    def error(self) -> float:
        """The worst relative error over all inputs."""
        return max(i.error for i in self.inputs)

    def __str__(self) -> str:
        lines = [f"gradcheck h={self.h:g} tol={self.tol:g}: {'ok' if self.ok else 'FAILED'}"]
        for i in self.inputs:
            worst = max(range(len(i.analytic)), key=lambda j: _error(i.analytic[j], i.numeric[j]))
            lines.append(
                f"  input {i.position}: error {i.error:.3g}"
                f" (analytic {i.analytic[worst]!r}, numeric {i.numeric[worst]!r})"
                f"{'' if i.ok else '  <-- too far apart'}"
            )
        return "\n".join(lines)


def gradcheck(
    f: Callable[..., Value], *inputs: Input, h: float = 1e-6, tol: float = 1e-5
) -> GradCheck:
    """Compare ``f``'s gradient by ``backward()`` with central differences at ``inputs``.

        >>> check = gradcheck(lambda a, b: a * b + b**3, -4.0, 2.0)
        >>> [i.analytic for i in check.inputs], check.ok
        ([(2.0,), (8.0,)], True)

    ``f`` takes one Value per input (a list of Values for a list input) and
    returns a Value. Inputs are numbers, Values (only their ``data`` is used) or
    lists of them; Values ``f`` reaches some other way (a model's weights) are
    constants here, so pass them as inputs to check them. Raises
    TypeError/ValueError on arguments it cannot check.
    """
    if not callable(f):
        raise TypeError(f"f must be a function of Values, got {type(f).__name__} {f!r}")
    if not inputs:
        raise ValueError("gradcheck needs at least one input: gradcheck(f, 1.5, -2.0)")
    for name, x, hint in (("h", h, "1e-6 suits values of order 1"), ("tol", tol, "try 1e-5")):
        if isinstance(x, bool) or not isinstance(x, Real) or not 0.0 < x < math.inf:
            raise ValueError(f"{name} must be a positive finite number, got {x!r}; {hint}")
    points = [_numbers(x, i) for i, x in enumerate(inputs)]
    scalar = [not isinstance(x, (list, tuple)) for x in inputs]

    def call(at: list[list[float]]) -> tuple[list[list[Value]], Value]:
        leaves = [list(map(Value, p)) for p in at]
        out = f(*(ls[0] if s else ls for ls, s in zip(leaves, scalar)))
        if not isinstance(out, Value):
            raise TypeError(
                f"f must return a Value computed from its arguments, got "
                f"{type(out).__name__} {out!r}"
            )
        return leaves, out

    leaves, out = call(points)
    out.backward()
    checks = []
    for i, p in enumerate(points):
        analytic = tuple(v.grad for v in leaves[i])
        numeric = []
        for j, x in enumerate(p):
            up, down = [list(q) for q in points], [list(q) for q in points]
            up[i][j], down[i][j] = x + h, x - h
            numeric.append((call(up)[1].data - call(down)[1].data) / (2.0 * h))
        error = max(map(_error, analytic, numeric))
        checks.append(InputCheck(i, analytic, tuple(numeric), error, error <= tol))
    return GradCheck(tuple(checks), float(h), float(tol))


def _numbers(x: Input, position: int) -> list[float]:
    """The input's numbers, checked: finite reals or Values, or a non-empty list of them."""
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    if not items:
        raise ValueError(f"input {position} is an empty list; give at least one number")
    out = []
    for item in items:
        if isinstance(item, Value):
            item = item.data
        elif isinstance(item, bool) or not isinstance(item, Real):
            raise TypeError(
                f"input {position} must be a number, a Value or a list of them, "
                f"got {type(item).__name__} {item!r}"
            )
        if not math.isfinite(item):
            raise ValueError(f"input {position} is {item!r}; differences need finite inputs")
        out.append(float(item))
    return out


def _error(analytic: float, numeric: float) -> float:
    if analytic == numeric:  # also equal infinities
        return 0.0
    err = abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1.0)
    return err if err == err else math.inf  # NaN must fail and sort last, not vanish in max()
