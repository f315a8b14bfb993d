"""``jit``: capture a training step's graph once, then replay it on arrays.

    >>> from gradtrace.engine import MLP, hinge, l2, jit
    >>> model = MLP(2, [4, 1], seed=0)
    >>> @jit
    ... def step_loss(X, y):
    ...     scores = [model(x) for x in X]
    ...     return hinge(scores, y) + l2(model.parameters())
    >>> loss = step_loss([[0.5, -1.0], [1.0, 0.25]], [1, -1])   # traced, eagerly
    >>> model.zero_grad(); loss.backward()
    >>> loss = step_loss([[0.1, 0.2], [0.3, 0.4]], [-1, 1])     # replayed on arrays
    >>> model.zero_grad(); loss.backward()                     # fills every p.grad

The function receives every number of its arguments as an input ``Value``
(nested lists and tuples keep their shape, Values passed in are used as they
are, anything else is passed through and becomes part of the cache key) and
returns the root ``Value``, using the model's parameters as usual. The first
call runs it eagerly and captures the graph (see :mod:`gradtrace.engine.jitgraph`);
later calls with arguments of the same structure replay the capture on flat
arrays (:mod:`gradtrace.engine.jitplan`) and return a :class:`Replay`, whose
``.data`` is the root's value and whose ``.backward()`` writes every
parameter's ``.grad`` exactly as the eager ``backward()`` would, bit for bit.

What cannot be replayed: anything decided in Python from a value. ``if
x.data > 0:``, a loop whose length depends on a value, or a number computed
outside the graph (``Value(random.random())``) are frozen as they were in the
first call. ``check_every=k`` (default 500) runs the first replay and every
k-th call eagerly instead, compares the graph and its values with the
capture, and raises :class:`GraphChanged` naming the first node that differs;
``check_every=0`` turns the check off, ``1`` checks every call. An eager call
costs about as much as 25 replays, so the default adds some 5 % to a long run.

A jitted function is for one thread at a time: its replays share scratch memory.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from gradtrace.engine.jitgraph import Capture, GraphChanged, JitError
from gradtrace.engine.rules import LEAF
from gradtrace.engine.value import Value

__all__ = ["jit", "Jit", "Replay", "Capture", "JitError", "GraphChanged"]

CHECK_EVERY = 500  # a checked call costs ~25 replays: ~5 % over the calls
MAX_CAPTURES = 8  # argument structures remembered per jitted function


def jit(fn: Callable[..., Value] | None = None, *, check_every: int = CHECK_EVERY) -> Any:
    """``fn`` compiled to a replay of its graph; usable as ``@jit`` or ``@jit(check_every=k)``."""
    if fn is None:
        return lambda f: Jit(f, check_every=check_every)
    return Jit(fn, check_every=check_every)


class Jit:
    """A jitted function: one :class:`Capture` per argument structure, replayed."""

    def __init__(self, fn: Callable[..., Value], *, check_every: int = CHECK_EVERY) -> None:
        if not callable(fn):
            raise JitError(f"jit() takes a function, got {type(fn).__name__} {fn!r}")
        if type(check_every) is not int or check_every < 0:
            raise JitError(
                f"check_every must be an int >= 0 (0 turns the check off), got {check_every!r}"
            )
        self.fn = fn
        self.check_every = check_every
        self.captures: dict[Any, Capture] = {}
        self.calls: dict[Any, int] = {}
        update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Replay:
        key, numbers, values = _flatten((args, kwargs))
        capture = self.captures.get(key)
        if capture is None:
            return self._capture(key, args, kwargs, numbers, values)
        count = self.calls[key] = self.calls[key] + 1
        if self.check_every and (count == 2 or count % self.check_every == 0):
            return self._check(capture, args, kwargs, numbers, values)
        return Replay.run(capture, numbers, values)

    def _eager(self, args: Any, kwargs: Any, numbers: list[float], values: list[Value | None]):
        inputs = [Value(x) if v is None else v for x, v in zip(numbers, values, strict=True)]
        a, kw = _rebuild((args, kwargs), iter(inputs))
        root = self.fn(*a, **kw)
        if not isinstance(root, Value):
            raise JitError(
                f"the jitted function {self.__name__!r} must return the root Value "
                f"(the loss), got {type(root).__name__}"
            )
        return root, inputs

    def _capture(self, key, args, kwargs, numbers, values) -> Replay:
        root, inputs = self._eager(args, kwargs, numbers, values)
        capture = Capture.trace(root, inputs)
        eager = [v.data for v in root.topo()]
        del root
        self.captures[key] = capture
        self.calls[key] = 1
        while len(self.captures) > MAX_CAPTURES:  # forget the oldest structure
            oldest = next(iter(self.captures))
            del self.captures[oldest], self.calls[oldest]
        replay = Replay.run(capture, numbers, values)
        replay.same_as(eager, "the traced call")
        return replay

    def _check(self, capture, args, kwargs, numbers, values) -> Replay:
        root, inputs = self._eager(args, kwargs, numbers, values)
        try:
            capture.compare(root, inputs)
        except GraphChanged as e:
            raise GraphChanged(f"jit({self.__name__}): {e}") from None
        eager = [v.data for v in root.topo()]
        del root
        replay = Replay.run(capture, numbers, values)
        replay.same_as(eager, "an eager call")
        return replay

    def __repr__(self) -> str:
        return f"<jit {self.__name__} captures={len(self.captures)}>"


class Replay:
    """The root of a replayed graph: ``.data``, ``.grad`` and ``.backward()`` as a Value's.

    ``values`` and ``grads`` hold every node of the graph in the eager
    engine's topological order (``grads`` after :meth:`backward`), as
    read-only arrays; ``capture`` is the graph they belong to.
    """

    __slots__ = ("capture", "values", "grads", "passed")

    def __init__(self, capture: Capture, values: Any, passed: list[tuple[int, Value]]) -> None:
        self.capture = capture
        self.values = values
        self.grads: Any = None
        self.passed = passed  # (node, Value) of the Values passed in: their .grad is written too

    @classmethod
    def run(cls, capture: Capture, numbers: list[float], values: list[Value | None]) -> Replay:
        import numpy as np
        from gradtrace.engine.jitplan import Plan

        plan = capture.plan
        if plan is None:
            plan = capture.plan = Plan(capture.ops, capture.a, capture.b, capture.exponents)
        vals = np.empty(capture.n_nodes)
        used = [(i, x) for i, x in zip(capture.input_pos, numbers, strict=True) if i >= 0]
        if used:
            pos, xs = zip(*used, strict=True)
            vals[list(pos)] = xs
        if capture.state_pos:
            vals[capture.state_pos] = [v.data for v in capture.state]
        if capture.const_pos:
            vals[capture.const_pos] = capture.const_data
        plan.forward(vals)
        vals.flags.writeable = False  # a recorder keeps the very array: it must not change
        passed = [(i, v) for i, v in zip(capture.input_pos, values, strict=True) if v is not None]
        return cls(capture, vals, passed)

    @property
    def data(self) -> float:
        return float(self.values[-1])

    @property
    def grad(self) -> float:
        return 0.0 if self.grads is None else float(self.grads[-1])

    def __float__(self) -> float:
        return self.data

    def backward(self) -> None:
        """Every node's gradient, as eager ``backward()``; parameters' ``.grad`` accumulate."""
        import numpy as np

        cap = self.capture
        start = np.zeros(cap.n_nodes) if self.grads is None else self.grads.copy()
        outside = [(i, v) for i, v in self.passed if i >= 0]
        outside += list(zip(cap.state_pos, cap.state, strict=True))
        if outside:
            pos = [i for i, _ in outside]
            start[pos] = [v.grad for _, v in outside]
        self.grads = cap.plan.backward(self.values, start)
        self.grads.flags.writeable = False
        if outside:
            for (_, v), g in zip(outside, self.grads[pos].tolist(), strict=True):
                v.grad = g

    def same_as(self, values: list[float], what: str) -> None:
        """Raise :class:`JitError` unless every node's value equals ``values`` bit for bit."""
        import numpy as np

        other = np.array(values, dtype=np.float64)
        bad = np.flatnonzero(
            (self.values.view(np.uint64) != other.view(np.uint64))
            & ~(np.isnan(self.values) & np.isnan(other))
        )
        if bad.size:
            i = int(bad[0])
            raise JitError(
                f"replay differs from {what} at node {i} ({self.capture.describe(i)}): "
                f"{self.values[i]!r} != {other[i]!r}; this is a gradtrace bug, please "
                "report it (call the function without jit meanwhile)"
            )

    def __repr__(self) -> str:
        return f"Replay(data={self.data!r}, grad={self.grad!r}, nodes={self.capture.n_nodes})"


def _flatten(tree: Any) -> tuple[Any, list[float], list[Value | None]]:
    """The structure key of ``tree``, its numbers in order, and the Value (or None) of each."""
    numbers: list[float] = []
    values: list[Value | None] = []

    def walk(x: Any) -> Any:
        t = type(x)
        if t is float or (t is int):
            numbers.append(float(x))
            values.append(None)
            return "n"
        if t is list or t is tuple:
            if all(type(e) is float for e in x):  # a row of numbers, the common leaf list
                numbers.extend(x)
                values.extend([None] * len(x))
                return (t, len(x))
            return (t, *map(walk, x))
        if t is dict:
            return (dict, *((k, walk(v)) for k, v in x.items()))
        if t is Value:
            if x.op is not LEAF:
                raise JitError(
                    f"a Value passed to a jitted function must be a leaf, got a {x.op!r} "
                    f"node ({x!r}); pass its number, {x.data!r}, instead"
                )
            numbers.append(x.data)
            values.append(x)
            return "v"
        try:
            hash(x)
        except TypeError:
            raise JitError(
                f"jit arguments are numbers, Values, lists, tuples and dicts of them, or "
                f"hashable constants; got {t.__name__} {x!r}: convert it (a numpy array "
                "with .tolist())"
            ) from None
        return ("static", t, x)

    return walk(tree), numbers, values


def _rebuild(tree: Any, inputs: Any) -> Any:
    """``tree`` with every number replaced by the next input Value."""
    t = type(tree)
    if t is float or t is int or t is Value:
        return next(inputs)
    if t is list or t is tuple:
        return t(_rebuild(e, inputs) for e in tree)
    if t is dict:
        return {k: _rebuild(v, inputs) for k, v in tree.items()}
    return tree
