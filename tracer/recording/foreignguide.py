"""The steady state of recording a foreign graph: the next step numbered by the last.

    >>> class V:  # the lecture's node: parents in a set
    ...     def __init__(self, data, _children=(), _op=""):
    ...         self.data, self.grad, self._prev, self._op = data, 0, set(_children), _op
    >>> from gradtrace.tracer.recording.foreign import _OPS, Walk
    >>> def graph():
    ...     x, w = V(2.0), V(3.0)
    ...     return V(6.0, (x, w), "*"), w
    >>> y, w = graph()
    >>> first = Walk(y, {id(w): 0})
    >>> guide = Guide.build(first, {id(w): 0}, _OPS.get)
    >>> y, w = graph()                                  # the next step: new nodes, same graph
    >>> nodes, values, grads, order = guide.number(y, {id(w): 0})
    >>> numbered = nodes if order is None else [nodes[j] for j in order]
    >>> numbered == Walk(y, {id(w): 0}).nodes           # as the full walks number it
    True

A training loop builds the same graph every step, so ``recording/foreign.py`` keeps
the last step's numbering as a :class:`Guide` and first tries to number the new graph
by it (:meth:`Guide.number`) before it walks the graph twice (structural keys
bottom-up, then the numbering). Only a set's two parents need a decision, which
comes first: they differ in op string (most), in which parameter they are (both
leaves), or a few levels up (:func:`_deep`, micrograd's ``data_loss + reg_loss``),
found once when the guide is built. The guide walks in one of two ways:

- **compiled** (``_guidedwalk.c``, built at install when a C compiler is there): one
  pass from the root down in reverse canonical order, a node at a time; a set's
  parents are also told apart by the node already placed at one of their positions.
  The nodes of a graph larger than the CPU's cache lie about in the order they were
  made, which is about canonical order: this pass reads memory nearly in order.
- **in Python** otherwise: a plan of C loops, a *generation* of nodes at a time
  (generation g+1: the parents first reached from generation g, root down): read
  every ``_prev``, flatten them (``itertools.chain``), pick each node's operands by
  the last step's positions (``operator.itemgetter``). A generation's nodes come
  from all over the graph, so on a large graph most reads miss the cache: this walk
  costs about two and a half times the compiled one.

**Why it is exact.** Whatever the decisions, the result is then *checked* as a whole:
every node's ``_prev`` has the last step's container kind and size,
every node's op string is the last step's, every leaf is the same watched parameter,
the nodes are all distinct, and every edge (not only those the walk followed) lands
on the node at the last step's position. That makes the numbering an isomorphism of
the last step's graph. Structural keys are kept by an isomorphism, so where the last
step's set parents had *different* keys the canonical order (by key) is carried over,
and the canonical numbering of the new graph is the guide's, node for node. A guide
is only built from a graph with no tie (a set's two parents with equal keys, ordered
by label and value: not structure), no set of more than two parents, and only when
the decisions above can tell every set's parents apart; otherwise every step takes
the two walks. Anything that fails a check sends the step to them too.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable
from itertools import chain, compress
from operator import is_, itemgetter, ne
from typing import TYPE_CHECKING, Any

import numpy as np
from gradtrace.tracer.recording.capture import MAX_SHAPES

try:
    from gradtrace.tracer.recording import _guidedwalk
except ImportError:  # installed without a C compiler: the generation walk, slower
    _guidedwalk = None

if TYPE_CHECKING:
    from gradtrace.tracer.recording.capture import GraphCapture, Shape
    from gradtrace.tracer.recording.foreign import Walk

# How many levels up a guide looks to tell a set's two parents apart
# (micrograd's data_loss * 1/n and reg_loss * alpha part three levels up).
DEPTH = 4

_TUPLEISH = (tuple, list)  # kept in their own order; anything else is a set (sorted by key)


def _getter(positions: list[int]) -> Callable[[Any], list]:
    """``seq -> [seq[p] for p in positions]`` as one C loop (itemgetter of one index
    returns the item, not a 1-tuple)."""
    if not positions:
        return lambda seq: []
    if len(positions) == 1:
        (i,) = positions
        return lambda seq: [seq[i]]
    get = itemgetter(*positions)
    return lambda seq: list(get(seq))


class Guide:
    """The last step's graph as a plan for numbering the next (see the module docstring).

    ``shape`` and ``key`` are the last step's; ``params`` every node's watched
    parameter (leaves; -1 elsewhere); ``order[i]`` is where canonical node i is in
    the list :meth:`number` returns (numpy fancy index: ``data[order]``).
    """

    __slots__ = (
        "shape", "key", "params", "order", "n", "compiled", "_deep_at", "_gens", "_types",
        "_tupleish", "_lens", "_raw", "_leaves", "_leaf_params", "_distinct", "_distinct_pos",
        "_n_distinct", "_opget",
    )  # fmt: skip

    @classmethod
    def build(cls, walk: Walk, param_index: dict[int, int], opget: Any) -> Guide | None:
        """The guide of ``walk``'s graph (a full walk: its keys are known), or None if
        the next step could not be numbered by it (a tie, a set of three parents...)."""
        # Its lists of tuples would set off collections of the user's whole graph (half
        # its time on micrograd's moons step); they make no cycles.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return cls._build(walk, param_index, opget)
        finally:
            if enabled:
                gc.enable()

    @classmethod
    def _build(cls, walk: Walk, param_index: dict[int, int], opget: Any) -> Guide | None:
        info = walk.info
        if info is None:
            return None
        nodes, a, b = walk.nodes, walk.a, walk.b
        n = len(nodes)
        prevs = [v._prev for v in nodes]
        if max(map(len, prevs)) > 2:  # only two edges are recorded: the rest is not checkable
            return None
        keys = [info[id(v)][0] for v in nodes]
        signatures: list[Any] | None = None
        deep_at: dict[int, tuple[int, Any, Any]] = {}  # set position -> how _deep orders it
        deep_memo: dict[tuple[int, int], Any] = {}

        def deep(j: int, depth: int) -> Any:  # _deep of node j, from the known positions
            if depth == 0:
                return signatures[j]
            if (j, depth) not in deep_memo:
                ups = sorted(deep(m, depth - 1) for m in {a[j], b[j]} if m >= 0)
                deep_memo[j, depth] = (signatures[j], tuple(ups))
            return deep_memo[j, depth]

        sign = _signer(param_index, opget)
        pget = param_index.get

        def by_op_first(i: int) -> bool:
            """Is node i a set of two whose parents differ in op string (see below)?
            Those come first in their generation: their operands are ``pa[:m]``."""
            prev = prevs[i]
            if len(prev) != 2 or type(prev) in _TUPLEISH or keys[a[i]] == keys[b[i]]:
                return False
            return nodes[a[i]]._op != nodes[b[i]]._op

        where = [-1] * n  # position -> index in generation order
        where[n - 1] = 0
        order: list[int] = [n - 1]  # positions in generation order
        gens = []
        cur = [n - 1]
        while cur:
            offs_a: list[int] = []
            offs_b: list[int] = []
            edges: list[tuple[int, int]] = []  # (index in pa + pb, position it must be)
            by_op: list[tuple[int, int]] = []
            op_a: list[str] = []
            by_param: list[tuple[int, int]] = []
            param_a: list[int] = []
            by_deep: list[tuple[int, int, int, Any, Any]] = []
            total = 0
            for i in cur:
                prev = prevs[i]
                size = len(prev)
                if not size:
                    continue
                k = len(offs_a)
                offs_a.append(total)
                kb = -1
                if b[i] >= 0:
                    kb = len(offs_b)
                    offs_b.append(total + 1 if size == 2 else total)  # set((a, a)): a twice
                edges.append((k, a[i]))
                if kb >= 0:
                    edges.append((~kb, b[i]))  # pb's index, made final below
                total += size
                if size < 2 or type(prev) in _TUPLEISH:
                    continue
                # A set of two: which of its parents is the first operand?
                j, m = a[i], b[i]
                x, y = nodes[j], nodes[m]
                if keys[j] == keys[m]:
                    return None  # a tie: its order is by label and value, not structure
                if x._op != y._op:
                    if k != len(by_op) or kb != k:  # not first (by_op_first): cannot be
                        return None
                    by_op.append((k, kb))
                    op_a.append(x._op)
                elif not x._prev and not y._prev:  # two leaves: different parameters
                    by_param.append((k, kb))
                    param_a.append(pget(id(x), -1))
                else:
                    if signatures is None:
                        signatures = list(map(sign, nodes))
                    for depth in range(1, DEPTH + 1):
                        dx, dy = deep(j, depth), deep(m, depth)
                        if dx != dy:
                            break
                    else:
                        return None
                    by_deep.append((k, kb, depth, dx, dy))
                    deep_at[i] = depth, dx, dy
            n_a = len(offs_a)
            edges = [(e if e >= 0 else n_a + ~e, j) for e, j in edges]
            # The next generation: the operands met for the first time, by position (the
            # order they were made in, about the order they lie in memory), each from the
            # first edge that reached it; every other edge is checked.
            first: dict[int, int] = {}
            for e, j in edges:
                if where[j] < 0 and j not in first:
                    first[j] = e
            start = len(order)
            nxt = sorted(first, key=lambda j: (not by_op_first(j), j))
            for j in nxt:
                where[j] = len(order)
                order.append(j)
            checked = [(e, where[j]) for e, j in edges if first.get(j) != e]
            old = [(e, g) for e, g in checked if g < start]  # placed in this or an earlier one
            new = [(e, g - start) for e, g in checked if g >= start]  # in the next one
            gens.append((
                total, _getter(offs_a), _getter(offs_b), len(by_op),
                op_a, by_param, _getter([k for k, _ in by_param]), param_a, by_deep,
                _getter([first[j] for j in nxt]), bool(checked), _getter([e for e, _ in old + new]),
                _getter([g for _, g in old]), _getter([g for _, g in new]),
            ))  # fmt: skip
            cur = nxt
        if len(order) != n:
            return None
        self = cls()
        self.shape, self.key, self.n, self._opget = None, walk.key, n, opget
        self.params = [p if not op else -1 for p, op in zip(walk.params, walk.ops)]
        self.order = np.array(where, dtype=np.intp)
        self._gens = gens
        self._types = [type(prevs[i]) for i in order]
        self._tupleish = [type(prevs[i]) in _TUPLEISH for i in order]
        self._lens = [len(prevs[i]) for i in order]
        self._raw = [nodes[i]._op for i in order]
        leaves = [g for g, i in enumerate(order) if not prevs[i]]
        self._leaves = _getter(leaves)
        self._leaf_params = [self.params[order[g]] for g in leaves]
        # Two positions holding one node: then so do two of their operands' positions,
        # unless both have the same operand positions, down to the leaves. So the nodes are
        # all distinct if the leaves are and each set of such twins is (docstring of _number).
        twins: dict[frozenset[int], list[int]] = {}
        for g, i in enumerate(order):
            if prevs[i]:
                twins.setdefault(frozenset((a[i], b[i])), []).append(g)
        distinct = leaves + [g for group in twins.values() if len(group) > 1 for g in group]
        self._distinct, self._n_distinct = _getter(distinct), len(distinct)
        self._distinct_pos = _getter([order[g] for g in distinct])
        # The same plan by canonical position, for the compiled walk (_guidedwalk.c).
        self._deep_at = deep_at
        self.compiled = (
            array("i", a).tobytes(), array("i", b).tobytes(), array("i", self.params).tobytes(),
            bytes(map(len, prevs)), bytes(type(p) in _TUPLEISH for p in prevs),
            [v._op for v in nodes],
        )  # fmt: skip
        return self

    def number(self, root: Any, param_index: dict[int, int]) -> tuple[list, Any, Any, Any] | None:
        """The new graph's nodes, their values and gradients (float64 buffers, the same
        order) and ``order``: None if that is canonical order, else where canonical node i
        is (the generation walk's ``self.order``); or None if it is not the guide's graph."""
        try:
            if _guidedwalk is None:
                found = self._number(root, param_index)
                return None if found is None else (*found, self.order)
            found = _guidedwalk.walk(root, self.compiled, param_index, self._decider(param_index))
            if found is None or len(set(self._distinct_pos(found[0]))) != self._n_distinct:
                return None
            return (*found, None)
        except Exception:  # anything odd: the full walks decide, and say why
            return None

    def _decider(self, param_index: dict[int, int]) -> Callable[[int, Any, Any], bool | None]:
        """For the compiled walk: is ``x`` set node i's first operand (True), ``y`` (False),
        or neither (None)? Asked only where the two are told apart a few levels up."""
        sign = _signer(param_index, self._opget)

        def decide(i: int, x: Any, y: Any) -> bool | None:
            depth, first, second = self._deep_at[i]
            s = _deep(x, sign, depth)
            return True if s == first else False if s == second else None

        return decide

    def _number(self, root: Any, param_index: dict[int, int]) -> tuple[list, Any, Any] | None:
        """The guided walk and its checks. Every node is read (its ``_prev``, ``_op``,
        value and gradient) in its generation, while the generation is in the CPU's
        cache: a graph is larger than the cache and a pass over it in any other order
        misses. Each edge not followed is checked there too, against the node already
        placed at its position (this or an earlier generation) or just placed (the next).

        Distinct nodes: if two positions hold one node, its operands at both are the
        same nodes (the edges are checked); where the two positions' operand positions
        differ, two lower positions hold one node too. Going down, this ends at two
        leaves or at two positions with the same operand positions ("twins"): checking
        those for distinct nodes checks all of them.
        """
        pget = param_index.get
        sign = _signer(param_index, self._opget)
        nodes: list[Any] = []
        data = array("d")
        grad = array("d")
        ops: list[Any] = []
        types: list[type] = []
        lens: list[int] = []
        cur = [root]
        for (
            total, get_a, get_b, by_op, op_a, by_param, param_at, param_a, by_deep,
            nxt, check, checked, old, new,
        ) in self._gens:  # fmt: skip
            prev = [v._prev for v in cur]
            ops += [v._op for v in cur]
            # int values (micrograd's relu gives 0, grads start at 0) become the exact float
            data.extend([v.data for v in cur])
            grad.extend([v.grad for v in cur])
            types += map(type, prev)
            lens += map(len, prev)
            flat = list(chain.from_iterable(prev))
            if len(flat) != total:
                return None
            pa, pb = get_a(flat), get_b(flat)
            # A set's first parent in iteration order: is it the operand the guide puts first?
            if by_op:  # the generation's first by_op nodes (a C swap of slices was slower)
                for k in compress(range(by_op), map(ne, [v._op for v in pa[:by_op]], op_a)):
                    pa[k], pb[k] = pb[k], pa[k]
            if by_param:
                which = [pget(id(v), -1) for v in param_at(pa)]
                for k, kb in compress(by_param, map(ne, which, param_a)):
                    pa[k], pb[kb] = pb[kb], pa[k]
            for k, kb, depth, first, second in by_deep:
                s = _deep(pa[k], sign, depth)
                if s != first:
                    if s != second:
                        return None
                    pa[k], pb[kb] = pb[kb], pa[k]
            both = pa + pb
            nodes += cur
            cur = nxt(both)
            if check and False in map(is_, checked(both), old(nodes) + new(cur)):
                return None
        # The rest of the checks (module docstring): containers, op strings, leaves, distinct.
        if len(nodes) != self.n or len(set(self._distinct(nodes))) != self._n_distinct:
            return None
        # The same types, or at least the same kinds (a set, a set subclass: sets).
        if types != self._types and self._tupleish != [t in _TUPLEISH for t in types]:
            return None
        if lens != self._lens or ops != self._raw:
            return None
        if [pget(id(v), -1) for v in self._leaves(nodes)] != self._leaf_params:
            return None
        return nodes, data, grad


def last_shape(graphs: GraphCapture, shape: Shape) -> Shape:
    """``shape``, the most recently seen of ``graphs.shapes`` (as :func:`find_shape` leaves it)."""
    if not graphs.shapes or graphs.shapes[-1] is not shape:
        if shape in graphs.shapes:
            graphs.shapes.remove(shape)
        graphs.shapes.append(shape)
        del graphs.shapes[:-MAX_SHAPES]
    return shape


def find_shape(graphs: GraphCapture, walk: Walk) -> Shape | None:
    """The shape of ``graphs`` that ``walk`` numbered, most recent first, or None."""
    ops, a, b = walk.ops, walk.a, walk.b
    for shape in reversed(graphs.shapes):
        if shape.ops == ops and shape.a == a and shape.b == b:
            leaf_params = [walk.params[i] for i in shape.leaves]
            if leaf_params == shape.leaf_params and _same_args(shape.exponents, walk.exponents):
                if shape is not graphs.shapes[-1]:
                    graphs.shapes.remove(shape)
                    graphs.shapes.append(shape)
                return shape
    return None


def _same_args(x: list[float | None], y: list[float | None]) -> bool:
    """Exponents equal bit for bit (a NaN exponent equals itself)."""
    if x == y:
        return True
    px = [i for i, e in enumerate(x) if e is not None]
    if px != [i for i, e in enumerate(y) if e is not None]:
        return False
    pick = [x[i] for i in px], [y[i] for i in px]
    return np.array(pick[0]).tobytes() == np.array(pick[1]).tobytes()


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
