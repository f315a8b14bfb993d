"""gradtrace's scalar autograd engine and small neural-network library.

    >>> from gradtrace.engine import Value, MLP
    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> L = a * b + 10.0
    >>> L.backward(); (a.grad, b.grad)
    (-3.0, 2.0)

Pure Python; imports nothing from the rest of gradtrace. Big graphs train in time
linear in their nodes after one opt-in line, ``linear_gc()`` (see ``gcpolicy``).
Every op is defined once, in the op table ``OP_TABLE`` (see ``ops``).
``jit(step)`` captures a step's graph once and replays it on arrays (numpy,
imported on the first call), bit for bit and several times faster.
"""

from gradtrace.engine import data, losses, optim
from gradtrace.engine.check import GradCheck, InputCheck, gradcheck
from gradtrace.engine.data import make_circles, make_moons, toy
from gradtrace.engine.gcpolicy import GCPolicy, linear_gc
from gradtrace.engine.graph import to_dot
from gradtrace.engine.jit import GraphChanged, Jit, JitError, Replay, jit
from gradtrace.engine.losses import (
    accuracy,
    binary_cross_entropy,
    cross_entropy,
    hinge,
    l2,
    mse,
)
from gradtrace.engine.nn import MLP, Layer, Module, Neuron, Role
from gradtrace.engine.ops import (
    ADD,
    DIV,
    EXP,
    LEAF,
    LEAF_KINDS,
    LOG,
    MUL,
    NEG,
    OP_TABLE,
    OPS,
    POW,
    RELU,
    SIGMOID,
    SUB,
    TANH,
    Op,
    UnknownOp,
    apply,
    from_lecture,
    lecture_name,
)
from gradtrace.engine.optim import (
    SGD,
    Adam,
    AdamW,
    Optimizer,
    constant,
    cosine,
    linear_decay,
    step_decay,
)
from gradtrace.engine.value import Value, structure, topo

__all__ = [
    "OPS",
    "OP_TABLE",
    "Op",
    "UnknownOp",
    "from_lecture",
    "lecture_name",
    "LEAF",
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "POW",
    "NEG",
    "RELU",
    "TANH",
    "EXP",
    "LOG",
    "SIGMOID",
    "LEAF_KINDS",
    "Value",
    "topo",
    "structure",
    "apply",
    "to_dot",
    "jit",
    "Jit",
    "Replay",
    "JitError",
    "GraphChanged",
    "gradcheck",
    "GradCheck",
    "InputCheck",
    "Module",
    "Neuron",
    "Layer",
    "MLP",
    "Role",
    "mse",
    "hinge",
    "binary_cross_entropy",
    "cross_entropy",
    "l2",
    "accuracy",
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "constant",
    "linear_decay",
    "step_decay",
    "cosine",
    "make_moons",
    "make_circles",
    "toy",
    "linear_gc",
    "GCPolicy",
    "data",
    "losses",
    "optim",
]
