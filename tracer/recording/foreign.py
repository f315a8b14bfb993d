"""Recording the micrograd the user wrote: graphs and models of another Value class.

    >>> class V:  # the smallest micrograd-style node: parents in a set, as the lecture's
    ...     def __init__(self, data, _children=(), _op=""):
    ...         self.data, self.grad, self._prev, self._op = data, 0, set(_children), _op
    >>> x = V(3.0); y = V(9.0, (x, x), "*")
    >>> walk = Walk(y, {})
    >>> walk.ops, walk.a, walk.b
    (['', '*'], [-1, 0], [-1, 0])

A foreign node is anything with ``.data``, ``.grad``, ``._prev`` (tuple, list or
set of parents) and ``._op`` (a string): the lecture's class, Karpathy's
``micrograd`` package, a course's variant. gradtrace's own :class:`Value` keeps
its fast path (``capture.GraphCapture``); a foreign graph is read here into the
same :class:`~capture.Shape` and :class:`~capture.Snapshot`, so everything
downstream (the writer, the analyses, the dashboard) sees one kind of run.

**Op strings** are mapped onto the engine's table with
:func:`gradtrace.engine.from_lecture` (``ReLU`` is ``relu``, ``**2`` is ``**``
with exponent 2). A string the engine does not know is kept as written: the
node's value and gradient are recorded, its op is shown as the user spelled it,
and the analyses say they cannot judge it. micrograd builds ``a + a`` with
``set((a, a)) == {a}``: a known two-operand op with one parent has it twice.
An unknown op with more than two parents keeps every parent's subtree but only
its first two edges (``a``/``b``, all the schema has).

**Node order.** A set iterates in an order that depends on memory addresses, so
the lecture's own ``topo`` differs from step to step. Here the parents of a set
are put in a canonical order first: each node gets a structural key, bottom-up,
from its op string, for a leaf the watched parameter it is (or none), and its
parents' keys, so it depends on neither values nor addresses; a set's parents
are sorted by key, a tuple's or list's keep their order. The graph is then
numbered like the engine's (``Value.topo``): depth-first post-order over the
parents in that order. The same forward code thus gives the same shape at every
step and in every process. *Ties* (two parents whose subtrees are built the same
way, like ``x1 * x2`` of two inputs) are broken by label, then value, then
gradient; the shape is the same whichever comes first, and parents equal in all
of these are indistinguishable in the recording. A NaN compares with nothing,
so parents tied on a NaN value keep the set's order. In the steady state (the
graph of the last two steps again) a plan made from the last step numbers the
graph in C loops a generation at a time and checks the result whole
(``recording/foreignguide.py``, which says why that is the same numbering); a
graph with a tie, or any graph the checks refuse, takes the two walks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from itertools import repeat
from operator import itemgetter
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
from gradtrace.engine import OP_TABLE, UnknownOp, Value, from_lecture
from gradtrace.tracer.errors import InvalidArgument
from gradtrace.tracer.recording.capture import MAX_SHAPES, Shape, Snapshot, first_nonfinite
from gradtrace.tracer.recording.foreignguide import Guide, find_shape, last_shape
from gradtrace.tracer.recording.foreignmodel import model_spec, named_parameters
from gradtrace.tracer.validate import shown, value_like

__all__ = ["Walk", "capture_foreign", "is_graph", "model_spec", "named_parameters", "op_code"]

if TYPE_CHECKING:
    from gradtrace.tracer.recording.capture import GraphCapture

_code, _arg = itemgetter(1), itemgetter(2)
_DONE = object()  # stack marker: the node below it has all its parents finished

# op string -> (op code, exponent, operand count or None, key): parsed once per string.
_OPS: dict[str, tuple[str, float | None, int | None, int]] = {}


def op_code(op: Any) -> tuple[str, float | None, int | None, int]:
    """``op`` as (the engine's op code, the exponent of ``**``, how many operands, key).

        >>> [op_code(s)[:3] for s in ("ReLU", "**-1", "softmax")]
        [('relu', None, 1), ('**', -1.0, 1), ('softmax', None, None)]

    An op string the engine does not know comes back as written (an empty one as
    ``"?"``: the empty op means a leaf), with no operand count. The key is the
    op's part of a structural key: a CRC of the code and the exponent's bits, the
    same in every process (``hash`` of a str is not, nor of None before 3.12).
    """
    known = _OPS.get(op) if type(op) is str else None
    if known is not None:
        return known
    if not isinstance(op, str):
        raise InvalidArgument(
            f"a node's _op = {shown(op)}: is {type(op).__name__}, not a string; "
            "a micrograd-style node spells its op as a string such as '+' or 'tanh'"
        )
    try:
        code, arg = from_lecture(op)
        arity: int | None = OP_TABLE[code].arity
    except UnknownOp:
        code, arg, arity = _as_written(op), None, None
    known = (code, arg, arity, _op_key(code, arg))
    if len(_OPS) < 4096:  # a graph with ever-new op strings must not grow this forever
        _OPS[op] = known
    return known


def _op_key(code: str, arg: float | None) -> int:
    bits = struct.pack("<d", arg) if arg is not None else b""
    return zlib.crc32(code.encode("utf-8", "surrogatepass") + b"\x00" + bits)


# A leaf's key: (0, its parameter index or -1); ints hash alike in every process.
_INPUT_KEY = hash((0, -1))


class Walk:
    """One foreign graph in canonical order: nodes, op codes, operand positions.

    ``nodes`` ends with the root; ``a[i]``/``b[i]`` are node i's operands (-1 for
    none), ``exponents[i]`` a ``**`` node's constant, ``params[i]`` the watched
    parameter a leaf is (-1 otherwise), ``key`` the root's structural key. See
    the module docstring for the order.
    """

    __slots__ = ("_nodes", "_found", "_order", "ops", "a", "b", "exponents", "params", "key",
                 "guided", "info")  # fmt: skip

    def __init__(
        self,
        root: Any,
        param_index: dict[int, int],
        seen: dict[int, Shape] | None = None,
        guide: Guide | None = None,
    ):
        """``seen``: shapes met before, by root key (one with this key is tried first);
        ``guide``: the last step's graph, tried before anything else (``foreignguide``)."""
        found = None if guide is None else guide.number(root, param_index)
        self.guided = found is not None
        self.info: dict[int, tuple] | None = None  # every node's key..., from the full walk
        self._found = None
        if found is not None:
            # Numbered by the guide: nodes, values, gradients, in canonical order or in
            # its generation order (found[0][order[i]] is node i).
            self._nodes, self._found, self._order = None, found[:3], found[3]
            shape = guide.shape
            self.ops, self.a, self.b, self.exponents = shape.ops, shape.a, shape.b, shape.exponents
            self.params, self.key = guide.params, guide.key
            return
        self.key, count, self.info = _operands(root, param_index)
        like = None if seen is None else seen.get(self.key)
        if like is None or not self._fill(root, self.info, like, count):
            self._number(root, self.info)
        # C loops (map), not a comprehension: this runs over every node every step.
        params = map(param_index.get, map(id, self._nodes), repeat(-1))
        # A watched parameter is a leaf's role; an op node's is not recorded.
        self.params = [p if not op else -1 for p, op in zip(params, self.ops)]

    @property
    def nodes(self) -> list[Any]:
        """Every node in canonical order, ending with the root."""
        if self._nodes is None:
            found, order = self._found[0], self._order
            self._nodes = found if order is None else [found[j] for j in order.tolist()]
        return self._nodes

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every node's value and gradient as float64 arrays, in canonical order (ints,
        micrograd's relu 0 and its first grads, become the exact float)."""
        if self._found is not None:  # read by the guide's walk, in its order
            _, data, grad = self._found
            data, grad, order = np.frombuffer(data), np.frombuffer(grad), self._order
            return (data, grad) if order is None else (data[order], grad[order])
        nodes = self._nodes
        n = len(nodes)
        # Comprehensions, not attrgetter maps: CPython specializes the reads of a
        # class's instance attributes in them (about a third faster here).
        data = np.fromiter([v.data for v in nodes], np.float64, n)
        grad = np.fromiter([v.grad for v in nodes], np.float64, n)
        return data, grad

    def _number(self, root: Any, info: dict[int, tuple]) -> None:
        # Depth-first post-order over the canonical operands, as Value.topo walks.
        nodes: list[Any] = []
        index: dict[int, int] = {}
        ops: list[str] = []
        a: list[int] = []
        b: list[int] = []
        exponents: list[float | None] = []
        stack: list[Any] = [root]
        push, pop = stack.append, stack.pop
        while stack:
            v = pop()
            if v is _DONE:
                v = pop()
                i = id(v)
                if i in index:
                    continue
                _, code, arg, parents = info[i]
                index[i] = len(nodes)
                nodes.append(v)
                ops.append(code)
                exponents.append(arg)
                n = len(parents)
                a.append(index[id(parents[0])] if n else -1)
                b.append(index[id(parents[1])] if n > 1 else -1)
                continue
            if id(v) in index:
                continue
            push(v)
            push(_DONE)
            for p in reversed(info[id(v)][3]):  # the first operand is walked first
                if id(p) not in index:
                    push(p)
        self._nodes, self.ops, self.a, self.b, self.exponents = nodes, ops, a, b, exponents

    def _fill(self, root: Any, info: dict[int, tuple], shape: Shape, count: int) -> bool:
        """Number the graph by ``shape``'s operand positions, root down; False if it is not
        that shape. Every edge is checked (each operand lands where the shape puts it,
        every position gets one distinct node), so this is exact, not a guess from the key;
        it is the same numbering :meth:`_number` gives, in one cheaper pass."""
        n = shape.n_nodes
        if n != count:
            return False
        at: list[Any] = [None] * n
        at[-1] = root
        a, b = shape.a, shape.b
        for i in range(n - 1, -1, -1):
            v = at[i]
            if v is None:
                return False
            parents = info[id(v)][3]
            if parents:
                p = parents[0]
                j = a[i]
                if j < 0 or (at[j] is not None and at[j] is not p):
                    return False
                at[j] = p
                if len(parents) > 1:
                    q = parents[1]
                    j = b[i]
                    if j < 0 or (at[j] is not None and at[j] is not q):
                        return False
                    at[j] = q
                elif b[i] >= 0:
                    return False
            elif a[i] >= 0:
                return False
        if len(set(map(id, at))) != n:
            return False
        rows = list(map(info.__getitem__, map(id, at)))
        self.ops = list(map(_code, rows))
        self.exponents = list(map(_arg, rows))
        self._nodes, self.a, self.b = at, a, b
        return True


def _operands(root: Any, param_index: dict[int, int]) -> tuple[int, int, dict[int, tuple]]:
    """(the root's key, the node count, every node's (key, op code, exponent, operands in
    canonical order) by ``id``).

    A post-order walk in whatever order the parents come: a node's key needs its
    parents' keys first. Keys are Python hashes of tuples of ints: equal for equal
    structure, and a collision only makes a tie (broken as the docstring says).
    """
    info: dict[int, tuple | None] = {}  # None: entered, its parents not finished yet
    stack: list[Any] = [root]
    push, pop = stack.append, stack.pop
    leaf_key = {i: hash((0, p)) for i, p in param_index.items()}.get
    input_key = _INPUT_KEY
    opget = _OPS.get
    # A parent's key is looked up when its child is finished: a parent missing then was
    # not the object met when the child was entered.
    try:
        while stack:
            v = pop()
            if v is _DONE:
                v = pop()
                prev = v._prev
                op = v._op
                code, arg, arity, opkey = opget(op) or op_code(op)
                if len(prev) == 2 and type(prev) is not tuple and type(prev) is not list:
                    p, q = prev
                    kp, kq = info[id(p)][0], info[id(q)][0]
                    if kq < kp or (kq == kp and _before(q, p)):
                        p, q, kp, kq = q, p, kq, kp
                    parents = (p, q)
                    if arity != 2:  # not the op we know: as written
                        code, arg, arity, opkey = _unknown(op)
                    info[id(v)] = (hash((opkey, kp, kq)), code, arg, parents)
                    continue
                if type(prev) is tuple or type(prev) is list:
                    parents = tuple(prev)
                else:
                    parents = tuple(_sorted(prev, info))
                if arity == 2 and len(parents) == 1:
                    parents = (parents[0], parents[0])  # micrograd's a + a: set((a, a)) == {a}
                elif arity is not None and len(parents) != arity:
                    code, arg, arity, opkey = _unknown(op)
                key = hash((opkey, *[info[id(p)][0] for p in parents]))
                info[id(v)] = (key, code, arg, parents)
                continue
            i = id(v)
            if i in info:
                continue
            prev = v._prev
            if not prev:
                info[i] = (leaf_key(i, input_key), "", None, ())
                continue
            info[i] = None
            push(v)
            push(_DONE)
            for p in prev:
                if id(p) not in info:
                    push(p)
    except KeyError:
        raise ValueError("a ._prev gave other parents when read again") from None
    return info[id(root)][0], len(info), info


def _as_written(op: str) -> str:
    return op or "?"


def _unknown(op: str) -> tuple[str, None, None, int]:
    """A known op string on the wrong number of parents: kept as written, unknown."""
    code = _as_written(op)
    return code, None, None, _op_key(code, None)


def _tie(v: Any) -> tuple:
    label = getattr(v, "label", "")
    return (label if isinstance(label, str) else "", float(v.data), float(v.grad))


def _before(p: Any, q: Any) -> bool:
    """The tie rule: does ``p`` come before ``q`` when their keys are equal?"""
    return _tie(p) < _tie(q)


def _sorted(parents: Iterable[Any], info: dict[int, tuple]) -> list[Any]:
    return sorted(parents, key=lambda p: (info[id(p)][0], *_tie(p)))


def capture_foreign(graphs: GraphCapture, root: Any, step: int) -> Snapshot:
    """``GraphCapture.capture`` for a foreign root: its shape (found or new) and numbers."""
    t0 = perf_counter()
    # Root key -> the shape last seen with it, so a step like the last is numbered by
    # filling that shape in (Walk._fill) rather than walked a second time.
    seen: dict[int, Shape] = graphs.__dict__.setdefault("foreign_shapes", {})
    guide: Guide | None = graphs.__dict__.get("foreign_guide")
    try:
        walk = Walk(root, graphs.param_index, seen, guide)
        t1 = perf_counter()
        data, grad = walk.arrays()
        t2 = perf_counter()
    except (TypeError, ValueError, OverflowError) as e:
        # A parent met again before its own parents were done (a cycle, which the
        # walk marks None), an unhashable _op, a .data that is not a number...
        raise InvalidArgument(
            f"log(loss): the graph of {shown(root)} cannot be read ({type(e).__name__}: "
            f"{shown(str(e), 120)}); a micrograd-style graph holds numbers in .data and "
            ".grad, its parents in ._prev and a string in ._op, and has no cycles"
        ) from None
    # The last step's shape: every capture leaves its own the most recently seen.
    last = graphs.shapes[-1] if graphs.shapes else None
    shape = last_shape(graphs, guide.shape) if walk.guided else find_shape(graphs, walk)
    new = shape is None
    if shape is None:
        leaves = [i for i, op in enumerate(walk.ops) if not op]
        leaf_params = [walk.params[i] for i in leaves]
        shape = Shape(walk.ops, walk.a, walk.b, leaves, leaf_params, step)
        shape.labels = [_label(v) for v in walk.nodes]
        shape.exponents = walk.exponents
        # Every foreign leaf that is not a watched parameter is an input: a
        # foreign engine says nothing of constants or targets.
        shape.kinds = [("input" if p < 0 else "parameter") if not op else "" for op, p in
                       zip(walk.ops, walk.params)]  # fmt: skip
        graphs.shapes.append(shape)
        del graphs.shapes[:-MAX_SHAPES]
        if len(seen) >= MAX_SHAPES:
            seen.clear()
    seen[walk.key] = shape
    if not walk.guided:
        # A full walk. Plan the next step by this one once the graph repeats (the last
        # step's shape again): a plan costs about a full walk, which a graph that changes
        # every step should not pay twice. None: the next step takes the full walk too
        # (also when no plan can be made, foreignguide's docstring says when).
        guide = Guide.build(walk, graphs.param_index, _OPS.get) if shape is last else None
        if guide is not None:
            guide.shape = shape
        graphs.__dict__["foreign_guide"] = guide
    snap = Snapshot(shape, new, data, grad, first_nonfinite(data, grad))
    graphs.timings.add(t1 - t0 + perf_counter() - t2, t2 - t1)
    return snap


def _label(v: Any) -> str:
    label = getattr(v, "label", "")
    return label if isinstance(label, str) else ""


def is_graph(x: Any) -> bool:
    """Is ``x`` a node of a micrograd-style graph other than gradtrace's own Value?"""
    return type(x) is not Value and value_like(x)
