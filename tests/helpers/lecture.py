"""The lecture's own Value class and MLP, written as the notes build them (not a test module).

Parents in a ``set``, a ``_backward`` closure per node, ``label``, tanh through
``exp``: the engine a viewer of the "building micrograd" lecture has. The tests
record it with gradtrace and compare every number with what it computed itself.
"""

from __future__ import annotations

import math
import random


class LValue:
    def __init__(self, data, _children=(), _op="", label=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op
        self.label = label

    def __add__(self, other):
        other = other if isinstance(other, LValue) else LValue(other)
        out = LValue(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += 1.0 * out.grad
            other.grad += 1.0 * out.grad

        out._backward = _backward
        return out

    def __radd__(self, other):
        return self + other

    def __mul__(self, other):
        other = other if isinstance(other, LValue) else LValue(other)
        out = LValue(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __rmul__(self, other):
        return self * other

    def __pow__(self, k):
        out = LValue(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other):
        return self * other**-1

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def exp(self):
        out = LValue(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        x = self.data
        t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
        out = LValue(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t**2) * out.grad

        out._backward = _backward
        return out

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()


def tanh(v):
    return v.tanh()


class LNeuron:
    def __init__(self, nin, rng, V=LValue, activation=tanh):
        self.w = [V(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = V(rng.uniform(-1, 1))
        self.activation = activation

    def __call__(self, x):
        return self.activation(sum((wi * xi for wi, xi in zip(self.w, x)), self.b))

    def parameters(self):
        return [*self.w, self.b]


class LLayer:
    def __init__(self, nin, nout, rng, **kinds):
        self.neurons = [LNeuron(nin, rng, **kinds) for _ in range(nout)]

    def __call__(self, x):
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class LMLP:
    """The notes' MLP; ``V`` and ``activation`` swap in another engine's Value and
    another non-linearity (the Values still pass through the notes' code)."""

    def __init__(self, nin, nouts, seed=0, V=LValue, activation=tanh):
        rng = random.Random(seed)
        sz = [nin, *nouts]
        kinds = {"V": V, "activation": activation}
        self.layers = [LLayer(sz[i], sz[i + 1], rng, **kinds) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def graph_nodes(root) -> list:
    """Every node of a foreign graph, by identity, however its parents are held."""
    seen, stack, out = set(), [root], []
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
        stack.extend(v._prev)
    return out
