"""One traced call of a jitted function: its graph, where each leaf's number comes from,
and the comparison that tells a later eager call apart from it.

    >>> from gradtrace.engine import Value
    >>> w = Value(2.0, kind="parameter")
    >>> x = Value(3.0)
    >>> cap = Capture.trace(w * x + 1, [x])
    >>> cap.sources()
    ['parameter', 'input 0', 'constant']

A leaf of the graph is one of three things. An *input* is the Value the jit
made of an argument's number (or a Value passed in), found by identity and
numbered by argument position. A *state* leaf is any other leaf that lives
outside the call (a model's weight, a Value the program keeps): its ``.data``
is read at every replay and its ``.grad`` written by ``backward()``, as the
eager engine would. A *constant* is a leaf the call made for itself (the ``1``
of ``x + 1``, a loss's target): nothing outside can see it, so its value is
baked into the capture and its gradient starts at zero every time, as a fresh
eager node's does.

State and constants are told apart by who else holds the leaf, counted with
``sys.getrefcount`` right after the call: the graph's own references are
known, anything beyond them is the outside world. That is the eager rule
itself: a leaf the program can reach again keeps accumulating gradients.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import Any

from gradtrace.engine.rules import LEAF, PARAMETER
from gradtrace.engine.value import Value, structure

STATE, CONSTANT = "state", "constant"  # leaf sources besides "input p" and "parameter"


class JitError(ValueError):
    """A jitted function cannot be replayed as called; the message names what and the fix."""


class GraphChanged(JitError):
    """An eager re-run of a jitted function built a different graph than the capture."""


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@dataclass(eq=False)
class Capture:
    """The structure of one traced graph and the source of each of its leaves.

    Its identity is the graph's identity: every replay of it has this structure,
    so a recorder compares captures, not nodes (see ``tracer/recording/jitcapture.py``).
    """

    ops: list[str]
    a: list[int]
    b: list[int]
    exponents: list[float | None]
    labels: list[str]
    kinds: list[str]  # Value.kind of every node ("" for computed ones)
    leaves: list[int]  # node positions of the leaves
    input_pos: list[int]  # node position of each input leaf, by argument position (-1: unused)
    state_pos: list[int]  # node positions of state leaves
    state: list[Value]  # the state leaves themselves, read at every replay
    const_pos: list[int]
    const_data: list[float]
    plan: Any = field(default=None, repr=False)  # jitplan.Plan, made on first replay

    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    @classmethod
    def trace(cls, root: Value, inputs: list[Value]) -> Capture:
        """The capture of ``root``'s graph, whose input leaves are ``inputs`` in order."""
        nodes, ops, a, b = structure(root)
        n = len(nodes)
        fan = [0] * n
        for i in a + b:
            if i >= 0:
                fan[i] += 1
        where = {id(v): p for p, v in enumerate(inputs)}
        input_pos = [-1] * len(inputs)
        state_pos, state, const_pos, const_data = [], [], [], []
        leaves = [i for i, op in enumerate(ops) if op is LEAF]
        for i in leaves:
            v = nodes[i]
            p = where.get(id(v))
            if p is not None:
                input_pos[p] = i
            elif sys.getrefcount(v) > _graph_refs(fan[i], i == n - 1):
                state_pos.append(i)
                state.append(v)
            else:
                const_pos.append(i)
                const_data.append(v.data)
            del v
        return cls(
            ops=ops,
            a=a,
            b=b,
            exponents=[v.exponent for v in nodes],
            labels=[v.label for v in nodes],
            kinds=[v.kind for v in nodes],
            leaves=leaves,
            input_pos=input_pos,
            state_pos=state_pos,
            state=state,
            const_pos=const_pos,
            const_data=const_data,
        )

    def sources(self) -> list[str]:
        """Each leaf's source in node order: ``'input p'``, ``'parameter'``, ``'state'``
        or ``'constant'`` (for messages and tests)."""
        out = dict.fromkeys(self.const_pos, CONSTANT)
        for i, v in zip(self.state_pos, self.state, strict=True):
            out[i] = "parameter" if v.kind == PARAMETER else STATE
        for p, i in enumerate(self.input_pos):
            if i >= 0:
                out[i] = f"input {p}"
        return [out[i] for i in self.leaves]

    def compare(self, root: Value, inputs: list[Value]) -> None:
        """Raise :class:`GraphChanged` naming the first difference between this
        capture and ``root``'s graph (an eager call with the same arguments)."""
        nodes, ops, a, b = structure(root)
        if len(nodes) != self.n_nodes:
            raise GraphChanged(
                f"the graph has {len(nodes)} nodes, the capture {self.n_nodes}{_HINT}"
            )
        if ops != self.ops or a != self.a or b != self.b:
            i = next(
                i
                for i in range(self.n_nodes)
                if (ops[i], a[i], b[i]) != (self.ops[i], self.a[i], self.b[i])
            )
            was = self.describe(i)
            raise GraphChanged(f"node {i} is now {_describe(nodes, i)}, it was {was}{_HINT}")
        for i, k in enumerate(self.exponents):
            if k is not None and _bits(k) != _bits(nodes[i].exponent):
                raise GraphChanged(
                    f"node {i} is now {_describe(nodes, i)}, it was {self.describe(i)}{_HINT}"
                )
        for p, (i, v) in enumerate(zip(self.input_pos, inputs, strict=True)):
            if i >= 0 and nodes[i] is not v:
                raise GraphChanged(f"argument number {p} no longer feeds node {i}{_HINT}")
        for j in range(len(self.state) - 1, -1, -1):  # from the end: _demote removes j
            i, v = self.state_pos[j], self.state[j]
            w = nodes[i]
            if w is v:
                continue
            if v.kind == PARAMETER or _bits(w.data) != _bits(v.data):
                raise GraphChanged(
                    f"leaf {i} ({self.describe(i)}) is another Value than in the capture "
                    f"({w.data!r}, was {v.data!r}): jit reads the Values it captured; pass "
                    "changing numbers as arguments, and jit() a new model's function anew"
                )
            self._demote(j)
        for i, x in zip(self.const_pos, self.const_data, strict=True):
            if _bits(nodes[i].data) != _bits(x):
                raise GraphChanged(
                    f"constant leaf {i} ({self.describe(i)}) is {nodes[i].data!r} now, "
                    f"{x!r} in the capture: a number computed outside the graph is baked "
                    "into the capture; pass it to the jitted function as an argument"
                )

    def _demote(self, j: int) -> None:
        """State leaf ``j`` turned out to be made anew by every call: a constant."""
        i, v = self.state_pos.pop(j), self.state.pop(j)
        self.const_pos.append(i)
        self.const_data.append(v.data)

    def describe(self, i: int) -> str:
        op = self.ops[i] or "a leaf"
        label = f" {self.labels[i]!r}" if self.labels[i] else ""
        operands = ", ".join(f"node {j}" for j in (self.a[i], self.b[i]) if j >= 0)
        return f"{op}{label}" + (f" of {operands}" if operands else "")


def _describe(nodes: list[Value], i: int) -> str:
    v = nodes[i]
    label = f" {v.label!r}" if v.label else ""
    operands = ", ".join(f"node {p._index}" for p in v.parents)
    return f"{v.op or 'a leaf'}{label}" + (f" of {operands}" if operands else "")


_HINT = (
    ". The function's graph depends on values (a Python `if` on `.data`, or a "
    "loop whose length does): jit replays the graph of its first call, so make "
    "the choice with graph ops (relu, ...) or call the function without jit"
)


def _graph_refs(fan: int, is_root: bool) -> int:
    """References to a leaf that the graph and :meth:`Capture.trace` hold: one per
    consumer slot, the node list, the root's cached order (not for the root),
    the loop's variable and ``getrefcount``'s own argument."""
    return fan + 3 + (0 if is_root else 1)
