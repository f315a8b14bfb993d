"""A captured graph compiled to a schedule of array operations, and its replay.

    >>> from gradtrace.engine import Value, structure
    >>> x = Value(3.0)
    >>> _, ops, a, b = structure(x * x + 1)
    >>> plan = Plan(ops, a, b, [None] * 4)
    >>> vals = np.array([3.0, 0.0, 1.0, 0.0]); plan.forward(vals); float(vals[-1])
    10.0
    >>> float(plan.backward(vals, np.zeros(4))[0])   # d(x*x + 1)/dx
    6.0

Nodes are numbered in the eager engine's topological order (``Value.topo``),
so ``values[i]`` and ``grads[i]`` are node i of the eager graph, bit for bit.

The forward pass runs level by level: a node's level is one more than its
operands', and all nodes of one level and one op are computed by one array
operation (in micrograd's moons step, 25,600 multiplications at once). A sum
built with Python's ``sum()`` is a chain ``((s + x0) + x1) + ...`` as deep as
it is long; it would cost one level per term, so a chain of ``+`` whose
running total feeds nothing else is one unit, computed with
``np.add.accumulate``, which adds strictly left to right: the eager order.

The backward pass runs the levels in reverse. Eager ``backward()`` visits the
nodes in reverse topological order and each one adds its contributions to its
operands' ``.grad`` as it goes, so a node used many times (a weight used by
100 examples) sums its contributions in the order its consumers come in that
walk. Float addition is not associative, so the replay keeps that order: each
contribution is stored in its own slot (one per edge, numbered in the eager
walk's order) and a node's gradient is folded from its slots, left to right,
just before the node passes its own gradient on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from gradtrace.engine.jitops import BACKWARD, FORWARD
from gradtrace.engine.rules import ADD, ARITY, LEAF

_I = np.intp


def _ints(xs: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(xs, dtype=_I)


class Plan:
    """The forward and backward schedules of one graph ``(ops, a, b, exponents)``.

    ``a``/``b`` are operand positions (-1 for none) as :func:`structure` gives
    them; the root is the last node.
    """

    def __init__(
        self,
        ops: Sequence[str],
        a: Sequence[int],
        b: Sequence[int],
        exponents: Sequence[float | None],
    ) -> None:
        self.n = len(ops)
        A, B = _ints(a), _ints(b)
        self.A, self.B = A, B
        self.K = np.array([0.0 if k is None else k for k in exponents], dtype=np.float64)
        self.leaves = _ints([i for i, op in enumerate(ops) if op is LEAF])
        self._edges(A, B)
        chains = self._chains(ops, A)
        self.forward_steps = self._forward_schedule(ops, A, B, chains)
        self.backward_steps, self.leaf_folds = self._backward_schedule(ops, A, B, chains)
        self._slots: np.ndarray | None = None

    # -- compiling ---------------------------------------------------------
    def _edges(self, A: np.ndarray, B: np.ndarray) -> None:
        """Number every (consumer, operand slot) edge in the eager backward walk's
        order: consumers from the last node to the first, slot a before slot b."""
        n = self.n
        has_a, has_b = A >= 0, B >= 0
        count = has_a.astype(_I) + has_b
        after = np.cumsum(count[::-1])[::-1] - count  # edges of the nodes after k
        self.ea = np.where(has_a, after, -1)
        self.eb = np.where(has_b, after + has_a, -1)
        self.E = E = int(count.sum())
        target = np.empty(E, dtype=_I)
        target[self.ea[has_a]] = A[has_a]
        target[self.eb[has_b]] = B[has_b]
        # Edges grouped by the node they feed, each group in walk order.
        self.into = np.argsort(target, kind="stable")
        self.fan = np.bincount(target, minlength=n).astype(_I)
        self.first_into = np.cumsum(self.fan) - self.fan

    def _chains(self, ops: Sequence[str], A: np.ndarray) -> dict[int, list[int]]:
        """Chains of ``+`` whose running total feeds only the next ``+``: tail -> nodes."""
        fan = self.fan
        head_of: dict[int, int] = {}
        members: dict[int, list[int]] = {}
        for k in np.flatnonzero(np.array([op is ADD for op in ops])).tolist():
            a = int(A[k])
            if ops[a] is ADD and fan[a] == 1:  # its only use is this node's slot a
                head = head_of.pop(a)
                members[head].append(k)
            else:
                head = k
                members[k] = [k]
            head_of[k] = head
        return {nodes[-1]: nodes for nodes in members.values() if len(nodes) > 1}

    def _forward_schedule(
        self, ops: Sequence[str], A: np.ndarray, B: np.ndarray, chains: dict[int, list[int]]
    ) -> list[tuple]:
        level = [0] * self.n
        in_chain = {k for nodes in chains.values() for k in nodes[:-1]}
        groups: dict[int, dict[object, list]] = defaultdict(lambda: defaultdict(list))
        a_list, b_list = A.tolist(), B.tolist()
        for k, op in enumerate(ops):
            if op is LEAF or k in in_chain:
                continue
            nodes = chains.get(k)
            if nodes is None:
                lev = 1 + max(level[a_list[k]], level[b_list[k]] if b_list[k] >= 0 else 0)
                level[k] = lev
                groups[lev][op].append(k)
                continue
            lev = 1 + max(level[a_list[nodes[0]]], *(level[b_list[c]] for c in nodes))
            for c in nodes:
                level[c] = lev
            groups[lev][len(nodes)].append(nodes)
        steps: list[tuple] = []
        for lev in sorted(groups):
            for key, members in groups[lev].items():
                if isinstance(key, str):  # one op over many nodes
                    S = _ints(members)
                    B_S = B[S] if ARITY[key] == 2 else None
                    steps.append((FORWARD[key], S, A[S], B_S, self.K[S]))
                else:  # chains of one length, one column each: rows add in eager order
                    T = _ints(members).T.copy()  # (length, chains)
                    Q = np.concatenate([A[T[:1]], B[T]])  # the operands, first one on top
                    steps.append((None, T, Q, None, None))
        return steps

    def _backward_schedule(
        self, ops: Sequence[str], A: np.ndarray, B: np.ndarray, chains: dict[int, list[int]]
    ) -> tuple[list[tuple[list, list]], list]:
        n = self.n
        root = n - 1
        tail_of = {c: tail for tail, nodes in chains.items() for c in nodes}
        internal = {c for nodes in chains.values() for c in nodes[1:]}  # slot a is in-chain
        level = [-1] * n
        level[root] = 0
        folds: dict[int, list[int]] = defaultdict(list)
        groups: dict[int, dict[object, list]] = defaultdict(lambda: defaultdict(list))
        a_list, b_list = A.tolist(), B.tolist()
        for k in range(n - 1, -1, -1):
            op = ops[k]
            if op is LEAF:
                continue
            tail = tail_of.get(k)
            if tail is not None and tail != k:
                level[k] = level[tail]
            lev = level[k]
            if tail is None:
                groups[lev][op].append(k)
            elif tail == k:
                groups[lev][len(chains[k])].append(chains[k])
            if (tail is None or tail == k) and k != root:
                folds[lev].append(k)
            a = a_list[k]
            if k not in internal and level[a] <= lev:
                level[a] = lev + 1
            b = b_list[k]
            if b >= 0 and level[b] <= lev:
                level[b] = lev + 1
        steps = []
        for lev in sorted(groups):
            fold = self._folds(folds.get(lev, []))
            ops_here = []
            for key, members in groups[lev].items():
                if isinstance(key, str):
                    S = _ints(members)
                    binary = ARITY[key] == 2
                    ops_here.append(
                        (
                            BACKWARD[key],
                            S,
                            A[S],
                            B[S] if binary else None,
                            self.ea[S],
                            self.eb[S] if binary else None,
                            self.K[S],
                        )
                    )
                else:  # from the tail (row 0) back to the head, one column per chain
                    T = _ints(members).T[::-1].copy()
                    ops_here.append((None, T, None, None, self.ea[T[-1]], self.eb[T], None))
            steps.append((fold, ops_here))
        leaves = self.leaves[self.leaves != root]
        return steps, self._folds(leaves.tolist())

    def _folds(self, nodes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per fan-in count F, the nodes and a (1 + F, m) matrix of slots to add top to
        bottom: the node's starting gradient (slot E + node), then its edges in walk order."""
        out = []
        by_fan: dict[int, list[int]] = defaultdict(list)
        fan = self.fan
        for k in nodes:
            by_fan[int(fan[k])].append(k)
        for F, members in sorted(by_fan.items()):
            us = _ints(members)
            slots = self.into[self.first_into[us] + np.arange(F)[:, None]]
            out.append((us, np.concatenate([(self.E + us)[None, :], slots])))
        return out

    # -- replaying ---------------------------------------------------------
    def forward(self, vals: np.ndarray) -> None:
        """Fill ``vals`` (leaves set by the caller) with every inner node's value."""
        accumulate = np.add.accumulate
        with np.errstate(all="ignore"):
            for f, S, A_S, B_S, K_S in self.forward_steps:
                if f is not None:
                    vals[S] = f(vals[A_S], None if B_S is None else vals[B_S], K_S)
                else:  # S: chain nodes (L, m); A_S: their operands (1 + L, m)
                    vals[S] = accumulate(vals[A_S])[1:]

    def backward(self, vals: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Every node's gradient after eager ``backward()`` from gradients ``start``
        (the ``.grad`` each node held before; the root's is set to 1.0, as eager
        does). ``start`` is overwritten and returned."""
        n, E = self.n, self.E
        if self._slots is None:  # contributions, then starting gradients: scratch, reused
            self._slots = np.empty(E + n)
        slots = self._slots
        slots[E:] = start
        grads = start  # the caller's fresh array, filled in place
        grads[n - 1] = 1.0
        with np.errstate(all="ignore"):
            for fold, groups in self.backward_steps:
                _fold(fold, slots, grads)
                for f, S, A_S, B_S, EA, EB, K_S in groups:
                    if f is None:  # a chain: its total's gradient flows to every term
                        _chain_back(S, EA, EB, slots, grads, E)
                        continue
                    ca, cb = f(
                        grads[S], vals[A_S], None if B_S is None else vals[B_S], vals[S], K_S
                    )
                    slots[EA] = ca
                    if EB is not None:
                        slots[EB] = cb
            _fold(self.leaf_folds, slots, grads)
        return grads


def _fold(folds: list, slots: np.ndarray, grads: np.ndarray) -> None:
    for us, rows in folds:
        if len(rows) == 2:
            grads[us] = slots[rows[0]] + slots[rows[1]]
        else:
            grads[us] = np.add.accumulate(slots[rows])[-1]


def _chain_back(
    T: np.ndarray, EA: np.ndarray, EB: np.ndarray, slots: np.ndarray, grads: np.ndarray, E: int
) -> None:
    # Node c_i of a chain is used only by c_{i+1}: its gradient is its starting
    # gradient plus c_{i+1}'s, a running sum from the tail (row 0) to the head.
    G = slots[E + T]  # starting gradients
    G[0] = grads[T[0]]  # the tail's, already folded
    np.add.accumulate(G, out=G)
    grads[T] = G
    slots[EB] = G  # every term gets its chain node's gradient
    slots[EA] = G[-1]  # and so does the head's first operand
