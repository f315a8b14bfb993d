"""Is a new graph built like one already seen? Answered by identity, in C loops.

    >>> from gradtrace.engine import Value, structure
    >>> x = Value(3.0)
    >>> _, ops, a, b = structure(x * x + 1)
    >>> same = SameLayout(ops, a, b)
    >>> y = Value(5.0)
    >>> same((y * y + 1).topo()), same((y * y - 1).topo()), same((y * x + 1).topo())
    (True, False, False)

A training loop builds the same graph every step from new nodes. The tracer
needs to know that node i of this step is node i of a stored shape: the same
op, the same exponent, and its operands at the same positions. Rebuilding the
position arrays (``structure``) reads every operand's position, one Python
object per node per operand; here the stored positions pick the expected
operand *objects* out of this step's node list (``operator.itemgetter``, a C
loop), and those are compared by identity with the operands the nodes hold.
Nothing is inferred or sampled: every node's op and both operand slots are
compared, so a graph that differs anywhere is not the same.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from operator import itemgetter

from gradtrace.engine.ops import POW
from gradtrace.engine.value import _NO, Value


def _picker(positions: Sequence[int], n: int) -> Callable[[list], tuple]:
    """Picks ``seq[p]`` for every position, as a tuple; -1 (no operand) picks
    ``seq[n]``, where :meth:`SameLayout.__call__` puts the no-operand marker."""
    at = [n if p < 0 else p for p in positions]
    if len(at) == 1:  # itemgetter of one index returns the item, not a 1-tuple
        i = at[0]
        return lambda seq: (seq[i],)
    return itemgetter(*at)


class SameLayout:
    """Tests whether a graph's node list has the structure ``(ops, a, b)``.

    ``ops``, ``a`` and ``b`` are what :func:`gradtrace.engine.structure` returns
    for a graph; ``exponents`` (a ``**`` node's constant, else None, per node)
    are compared bit for bit when given.
    """

    __slots__ = ("ops", "n", "_a", "_b", "_pows", "_args")

    def __init__(
        self,
        ops: Sequence[str],
        a: Sequence[int],
        b: Sequence[int],
        exponents: Sequence[float | None] | None = None,
    ) -> None:
        n = len(ops)
        if len(a) != n or len(b) != n:
            raise ValueError(f"ops, a and b need one entry per node: {n}, {len(a)}, {len(b)}")
        self.ops = list(ops)
        self.n = n
        self._a = _picker(a, n)
        self._b = _picker(b, n)
        self._pows = [i for i, op in enumerate(self.ops) if op is POW]
        self._args: bytes | None = None
        if exponents is not None:
            self._args = array("d", [exponents[i] for i in self._pows]).tobytes()

    def __call__(self, nodes: list[Value]) -> bool:
        """True if ``nodes`` (a ``topo()`` list) is built exactly like the stored graph."""
        if len(nodes) != self.n or [v.op for v in nodes] != self.ops:
            return False
        if self._args is not None and self._pows:
            args = array("d", [nodes[i]._arg for i in self._pows]).tobytes()
            if args != self._args:  # bytes: NaN and -0.0 exponents compare exactly
                return False
        # Operands as objects (no position lookups), then the objects the stored
        # positions name; tuples compare item by item, identity first. Value
        # defines no __eq__, so identity is all there is (a test holds it to that:
        # an __eq__ saying two distinct nodes are equal would make this lie).
        pa = tuple([v._a for v in nodes])
        pb = tuple([v._b for v in nodes])
        nodes.append(_NO)
        try:
            return pa == self._a(nodes) and pb == self._b(nodes)
        finally:
            nodes.pop()
