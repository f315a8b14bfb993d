"""The steady state of recording a foreign graph: the next step numbered by the last.

A training loop builds the same graph every step, so ``recording/foreign.py`` keeps
the last step's numbering (a :class:`Guide`) and first tries to number the new
graph by it in a single walk, root down (:func:`guided`), before it walks the graph
twice (structural keys bottom-up, then the numbering). Anything that does not fit
the guide, to the last edge, op string and parameter, sends it back to those walks.
"""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradtrace.tracer.recording.capture import Shape
    from gradtrace.tracer.recording.foreign import Walk

_get_op = attrgetter("_op")

# How many levels up :func:`guided` looks to tell a set's two parents apart
# (micrograd's data_loss * 1/n and reg_loss * alpha part three levels up).
DEPTH = 4


def guided(root: Any, param_index: dict[int, int], guide: Guide) -> tuple[list, list] | None:
    """The steady state in one walk: number the graph by the last step's ``guide``,
    root down, without the keys: (the nodes, each one's watched parameter or -1) in
    the order :class:`~foreign.Walk` gives, or None if it is not that graph.

    A set's two parents go where their signature (a leaf's parameter, an op's key,
    see :func:`_signer`) is the one the guide has there; where both positions
    have one signature, where their parents' signatures are (the root of
    ``data_loss + reg_loss``); where those are alike too, it gives up. Every edge,
    op string and parameter is then checked against the guide, so a graph numbered
    here is the guide's structure, with each set's parents where their structural
    keys put them (distinct signatures mean distinct keys): what ``Walk._number``
    gives. Ties on keys (the label rule) never get here: their signatures are alike.
    """
    shape, raw, params = guide.shape, guide.raw, guide.params
    n = shape.n_nodes
    a, b, sig = shape.a, shape.b, guide.signatures
    at: list[Any] = [None] * n
    at[-1] = root
    sign, ops, leaf = guide.sign, guide.ops, param_index.get
    for i in range(n - 1, -1, -1):
        v = at[i]
        if v is None:
            return None
        prev = v._prev
        j, k = a[i], b[i]
        if not prev:
            if j >= 0:
                return None
            continue
        size = len(prev)
        if j < 0 or size > 2:
            return None
        if size == 1:
            (p,) = prev
            q = p if k >= 0 else None  # micrograd's a + a: set((a, a)) == {a}
        else:
            p, q = prev
            if type(prev) is not tuple and type(prev) is not list:  # a set: which is a?
                if sig[j] != sig[k]:
                    # sign(p), inline: this runs for most nodes of a graph
                    s = ops.get(p._op, -1) if p._prev else -3 - leaf(id(p), -1)
                    if s != sig[j]:
                        if s != sig[k]:
                            return None
                        p, q = q, p
                else:  # look further up, a level at a time
                    for depth in range(1, DEPTH + 1):
                        deep_j, deep_k = guide.deep(j, depth), guide.deep(k, depth)
                        if deep_j != deep_k:
                            break
                    else:
                        return None
                    s = _deep(p, sign, depth)
                    if s != deep_j:
                        if s != deep_k:
                            return None
                        p, q = q, p
        if at[j] is None:
            at[j] = p
        elif at[j] is not p:
            return None
        if q is None:
            if k >= 0:
                return None
        elif k < 0:
            return None
        elif at[k] is None:
            at[k] = q
        elif at[k] is not q:
            return None
    # Every placed node's parents are placed, so these are all the graph's nodes.
    if len(set(map(id, at))) != n or list(map(_get_op, at)) != raw:
        return None
    node_params = list(map(param_index.get, map(id, at), repeat(-1)))
    if node_params != params:
        return None
    return at, node_params


class Guide:
    """The last step's graph, to number the next one by (:func:`guided`): its
    shape, root key, every node's ``_op`` as written, watched parameter and
    signature (:func:`_signer`)."""

    __slots__ = ("shape", "key", "raw", "params", "sign", "signatures", "ops", "_deep")

    def __init__(self, walk: Walk, shape: Shape, param_index: dict[int, int], opget: Any):
        self.shape, self.key, self.params = shape, walk.key, walk.params
        self.raw = list(map(_get_op, walk.nodes))
        self.sign = _signer(param_index, opget)
        self.signatures = list(map(self.sign, walk.nodes))
        # op string -> its signature, for the ops of this graph (an op's key is >= 0)
        self.ops = {op: self.sign(v) for op, v in zip(self.raw, walk.nodes) if v._prev}
        self._deep: dict[tuple[int, int], Any] = {}

    def deep(self, j: int, depth: int) -> Any:
        """Node ``j``'s signature and its operands', ``depth`` levels up (as :func:`_deep`)."""
        key = (j, depth)
        if key not in self._deep:
            sig = self.signatures[j]
            if depth == 0:
                return sig
            ops = {m for m in (self.shape.a[j], self.shape.b[j]) if m >= 0}
            self._deep[key] = (sig, tuple(sorted(self.deep(m, depth - 1) for m in ops)))
        return self._deep[key]


def _signer(param_index: dict[int, int], opget: Any) -> Any:
    """A node's signature: for a leaf, which watched parameter it is (a negative
    number), for an op, its key (``opget``: ``foreign.op_code``'s cache of op strings,
    keys >= 0). A node's structural key is made of its signature and its parents'
    keys, so nodes whose signatures differ have different keys."""
    get = param_index.get

    def sign(v: Any) -> int:
        if not v._prev:
            return -3 - get(id(v), -1)  # a leaf: -2 an input, -3 - i parameter i
        known = opget(v._op)
        return -1 if known is None else known[3]  # -1: an op string not seen yet

    return sign


def _deep(v: Any, sign: Any, depth: int) -> Any:
    """``v``'s signature with its distinct parents', ``depth`` levels up."""
    if depth == 0:
        return sign(v)
    return (sign(v), tuple(sorted(_deep(p, sign, depth - 1) for p in set(v._prev))))
