"""Graph algorithms over one step's node table (``RunView.nodes(step)``): children,
neighbourhoods, a neuron's sub-graph for one training example, the training
inputs and labels. No Dash, no drawing, no database: ``graphview`` draws what
these pick.

Node tables have one row per node in topological order with parent columns
``a``/``b`` (nullable ints) and ``param`` (the watched parameter's idx or NA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from gradtrace.tracer.report import health

MAX_NODES = 80


@dataclass(frozen=True)
class Children:
    """A CSR index: the children of node ``i`` are ``targets[offsets[i]:offsets[i+1]]``.

    ``found`` keeps what ``neuron_chains`` found in this graph's structure: an index
    serves every step of one graph shape (``RunCache.children``), whose chains are
    the same however the values differ."""

    offsets: np.ndarray
    targets: np.ndarray
    a: np.ndarray  # first parent of each node, -1 for none
    b: np.ndarray  # second parent, -1 for none
    found: dict = field(default_factory=dict, compare=False, repr=False)

    def of(self, node: int) -> np.ndarray:
        """The children of ``node``, ascending."""
        return self.targets[self.offsets[node] : self.offsets[node + 1]]


def children_index(nodes: pd.DataFrame) -> Children:
    """Build the children index from the parent columns of a node table."""
    n = len(nodes)
    a = nodes["a"].to_numpy(dtype=np.int64, na_value=-1)
    b = nodes["b"].to_numpy(dtype=np.int64, na_value=-1)
    child = np.arange(n, dtype=np.int64)
    b_distinct = np.where(b == a, -1, b)  # x*x: one edge, not two
    parent = np.concatenate([a, b_distinct])
    kid = np.concatenate([child, child])
    keep = parent >= 0
    parent, kid = parent[keep], kid[keep]
    order = np.lexsort((kid, parent))
    parent, kid = parent[order], kid[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.add.at(offsets, parent + 1, 1)
    return Children(np.cumsum(offsets), kid, a, b)


def parents_of(children: Children, node: int) -> list[int]:
    """The distinct parents of ``node`` in argument order."""
    out = []
    for p in (int(children.a[node]), int(children.b[node])):
        if p >= 0 and p not in out:
            out.append(p)
    return out


def neighbourhood(
    children: Children, center: int, depth: int = 2, cap: int = MAX_NODES
) -> list[int]:
    """Nodes within ``depth`` parent/child hops of ``center``, breadth first
    (parents before children at each node), at most ``cap`` of them."""
    n = len(children.a)
    if not 0 <= center < n:
        raise ValueError(f"node {center} does not exist; this graph has nodes 0..{n - 1}")
    seen = {center: 0}
    order = [center]
    frontier = [center]
    for level in range(1, depth + 1):
        nxt = []
        for node in frontier:
            for other in [*parents_of(children, node), *children.of(node).tolist()]:
                if other in seen:
                    continue
                if len(order) >= cap:
                    return order
                seen[other] = level
                order.append(other)
                nxt.append(other)
        frontier = nxt
    return order


@dataclass(frozen=True)
class Folded:
    """Nodes not drawn, counted beside the drawn ``node`` they hang off: its
    ``children`` beyond the first few, or the earlier terms of the ``sum`` it
    continues (a chain of ``+`` nodes, as a long ``sum()`` builds)."""

    node: int
    count: int
    kind: str  # "children" | "sum"


READABLE = 25  # nodes (and folds) in a neighbourhood that reads at the graph's size
FANOUT = 3  # children drawn per node; a weight used by every example has hundreds


def readable_neighbourhood(
    children: Children,
    ops: np.ndarray,
    center: int,
    depth: int = 2,
    cap: int = READABLE,
    fanout: int = FANOUT,
) -> tuple[list[int], list[Folded]]:
    """Nodes within ``depth`` hops of ``center``, breadth first, that stay readable:
    at most ``fanout`` children of any node (the others folded into a count), the
    earlier terms of a long sum folded into one count, and at most ``cap`` nodes
    and folds in all.

        >>> shown, folded = readable_neighbourhood(children, nodes["op"].to_numpy(), 5637)
    """
    n = len(children.a)
    if not 0 <= center < n:
        raise ValueError(f"node {center} does not exist; this graph has nodes 0..{n - 1}")
    shown, folded = [center], []
    seen = {center}
    frontier = [center]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            kids = children.of(node).tolist()
            for other in [*parents_of(children, node), *kids[:fanout]]:
                if other in seen or len(shown) + len(folded) >= cap:
                    continue
                seen.add(other)
                shown.append(other)
                nxt.append(other)
            rest = [k for k in kids[fanout:] if k not in seen]
            if rest and len(shown) + len(folded) < cap:
                folded.append(Folded(node, len(rest), "children"))
        frontier = nxt
    for node in list(shown):
        if ops[node] != "+" or len(shown) + len(folded) >= cap:
            continue
        terms, p = 0, node
        while True:  # up the chain of + parents that are not drawn
            up = [q for q in parents_of(children, p) if ops[q] == "+" and q not in seen]
            if not up:
                break
            p = up[0]
            terms += 1
        if terms:
            folded.append(Folded(node, terms, "sum"))
    return shown, folded


def param_nodes(nodes: pd.DataFrame) -> dict[int, int]:
    """Parameter idx -> the node holding it."""
    mask = nodes["param"].notna().to_numpy()
    params = nodes["param"].to_numpy(dtype=np.int64, na_value=-1)[mask]
    ids = nodes["node"].to_numpy(dtype=np.int64)[mask]
    return dict(zip(params.tolist(), ids.tolist(), strict=True))


def _neuron_params(parameters: pd.DataFrame, layer: int, neuron: int) -> tuple[int, list[int]]:
    rows = parameters[(parameters["layer"] == layer) & (parameters["neuron"] == neuron)]
    bias = rows.loc[rows["kind"] == "bias", "idx"].tolist()
    if not bias:
        raise ValueError(f"there is no neuron {neuron} in layer {layer}")
    return int(bias[0]), rows.loc[rows["kind"] == "weight", "idx"].astype(int).tolist()


def neuron_chains(
    nodes: pd.DataFrame,
    children: Children,
    parameters: pd.DataFrame,
    layer: int,
    neuron: int,
) -> tuple[int, list[list[tuple[int, int]]], list[int | None]]:
    """The pre-activation sums of one neuron, one per training example.

    Returns the bias node, for each example the ``(add node, mul node)`` pairs of
    its chain ``((b + w0*x0) + w1*x1) + ...`` and the activation node after the
    chain (or None). Examples are numbered in the order the graph reaches them.
    """
    bias_idx, weight_idx = _neuron_params(parameters, layer, neuron)
    key = (layer, neuron, bias_idx, tuple(weight_idx))
    if key not in children.found:
        children.found[key] = _chains(nodes, children, parameters, layer, neuron, *key[2:])
    bias, chains, acts = children.found[key]
    return bias, [list(c) for c in chains], list(acts)


def _chains(
    nodes: pd.DataFrame,
    children: Children,
    parameters: pd.DataFrame,
    layer: int,
    neuron: int,
    bias_idx: int,
    weight_idx: tuple[int, ...],
) -> tuple[int, list[list[tuple[int, int]]], list[int | None]]:
    """``neuron_chains`` computed, given the neuron's parameters (``_neuron_params``)."""
    where = param_nodes(nodes)
    if bias_idx not in where:
        raise ValueError(f"layer {layer} neuron {neuron} does not take part in this graph")
    weights = {where[i] for i in weight_idx if i in where}
    ops = nodes["op"].to_numpy()
    bias = where[bias_idx]
    # Which activation ends a neuron is health's rule (one place): the node after a chain.
    units = health.unit_nodes(nodes, parameters)
    mine = units.loc[(units["layer"] == layer) & (units["neuron"] == neuron), "node"]
    after = {int(children.a[k]): int(k) for k in mine.tolist()}

    def step_from(node: int) -> tuple[int, int] | None:
        for kid in children.of(node).tolist():
            if ops[kid] != "+":
                continue
            other = [p for p in parents_of(children, kid) if p != node]
            if len(other) == 1 and ops[other[0]] == "*":
                mul = other[0]
                if weights.intersection(parents_of(children, mul)):
                    return kid, mul
        return None

    chains: list[list[tuple[int, int]]] = []
    acts: list[int | None] = []
    for kid in children.of(bias).tolist():
        if ops[kid] != "+":
            continue
        chain: list[tuple[int, int]] = []
        link = _first_link(kid, bias, children, ops, weights)
        while link is not None and len(chain) <= len(weight_idx):
            chain.append(link)
            link = step_from(link[0])
        if not chain:
            continue
        chains.append(chain)
        end = chain[-1][0]
        acts.append(after.get(end))
    return bias, chains, acts


def _first_link(
    add: int, bias: int, children: Children, ops: np.ndarray, weights: set[int]
) -> tuple[int, int] | None:
    other = [p for p in parents_of(children, add) if p != bias]
    if (
        len(other) == 1
        and ops[other[0]] == "*"
        and weights.intersection(parents_of(children, other[0]))
    ):
        return add, other[0]
    return None


def busiest_example(
    nodes: pd.DataFrame, children: Children, parameters: pd.DataFrame, layer: int, neuron: int
) -> int:
    """The training example through which the neuron passes the most loss gradient
    (largest |grad| at its activation, else at the end of its sum): the one whose
    graph is worth looking at first. 0 when every example's gradient is 0."""
    _, chains, acts = neuron_chains(nodes, children, parameters, layer, neuron)
    grads = nodes["grad"].to_numpy(dtype=np.float64)
    ends = [act if act is not None else chain[-1][0] for chain, act in zip(chains, acts)]
    if not ends:
        return 0
    mags = np.abs(np.nan_to_num(grads[ends], nan=0.0, posinf=np.inf, neginf=np.inf))
    return int(np.argmax(mags)) if mags.max() > 0 else 0


def neuron_subgraph(
    nodes: pd.DataFrame,
    children: Children,
    parameters: pd.DataFrame,
    layer: int,
    neuron: int,
    example: int,
) -> list[int]:
    """One neuron's graph for one training example: the bias leaf, the add chain,
    every ``w*x`` and its two parents, and the activation."""
    bias, chains, acts = neuron_chains(nodes, children, parameters, layer, neuron)
    if not chains:
        raise ValueError(f"no w*x chain found for layer {layer} neuron {neuron}")
    if not 0 <= example < len(chains):
        raise ValueError(f"example {example} is out of range 0..{len(chains) - 1}")
    out = [bias]
    for add, mul in chains[example]:
        out += [add, mul, *parents_of(children, mul)]
    if acts[example] is not None:
        out.append(acts[example])
    return list(dict.fromkeys(out))


def training_inputs(
    nodes: pd.DataFrame, children: Children, parameters: pd.DataFrame
) -> np.ndarray:
    """The training inputs (examples x features) read off the graph: the ``x`` of
    every ``w*x`` of the first neuron of layer 0. Empty when not found."""
    try:
        _, chains, _ = neuron_chains(nodes, children, parameters, 0, 0)
    except ValueError:
        return np.empty((0, 0))
    values = nodes["value"].to_numpy(dtype=np.float64)
    is_param = nodes["param"].notna().to_numpy()
    rows = []
    for chain in chains:
        row = []
        for _, mul in chain:
            xs = [p for p in parents_of(children, mul) if not is_param[p]]
            row.append(values[xs[0]] if xs else math.nan)
        rows.append(row)
    width = max((len(r) for r in rows), default=0)
    if not rows or any(len(r) != width for r in rows):
        return np.empty((0, 0))
    return np.asarray(rows, dtype=np.float64)


def hinge_labels(
    nodes: pd.DataFrame, children: Children, parameters: pd.DataFrame
) -> np.ndarray | None:
    """Targets of a hinge loss (``1 + -y*score``), one per example, or None when the
    graph is not shaped that way (the dataset itself is not recorded)."""
    layers = parameters["layer"].dropna()
    if layers.empty:
        return None
    last = int(layers.max())
    try:
        _, chains, _ = neuron_chains(nodes, children, parameters, last, 0)
    except ValueError:
        return None
    ops = nodes["op"].to_numpy()
    values = nodes["value"].to_numpy(dtype=np.float64)
    is_leaf = (ops == "") & nodes["param"].isna().to_numpy()
    labels = []
    for chain in chains:
        score = chain[-1][0]
        found = None
        for kid in children.of(score).tolist():
            other = [p for p in parents_of(children, kid) if p != score]
            if ops[kid] == "*" and len(other) == 1 and is_leaf[other[0]]:
                if abs(values[other[0]]) == 1.0:
                    found = -values[other[0]]
                break
        if found is None:
            return None
        labels.append(found)
    return np.asarray(labels)
