"""Text for ``gradtrace diff`` and ``gradtrace verify``.

User text (run names, labels, config values) is shown with control characters
escaped (``cli/text.py``), so a recorded string cannot drive the terminal.
"""

from __future__ import annotations

import json
from typing import Any

from gradtrace.cli.format import number, table
from gradtrace.cli.text import one_field
from gradtrace.tracer.report import NodeDiff, RunDiff, VerifyResult


def _value(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict | list):
        return one_field(json.dumps(v, sort_keys=True, default=str))
    return "-" if v is None else one_field(v)


def _run(name: str, rid: str) -> str:
    return f"{one_field(name)} ({rid[:8]})"


def _node(n: NodeDiff) -> str:
    return f"{n.name(one_field)}: {n.a!r} vs {n.b!r}"


def diff_report(d: RunDiff) -> str:
    """The answer to "are these the same computation, and if not, where do they part?"."""
    lines = [f"A: {_run(d.a_name, d.a_id)}   B: {_run(d.b_name, d.b_id)}"]
    tol = "bit-exact" if not (d.rtol or d.atol) else f"rtol {d.rtol:g}, atol {d.atol:g}"
    if d.identical:
        last = "-" if d.last_common_step is None else d.last_common_step
        lines.append(f"identical through step {last} ({d.common_steps} common steps, {tol})")
    if d.steps_a != d.steps_b:
        lines.append(f"A logged {d.steps_a} steps, B {d.steps_b}")
    if not d.same_parameters:
        na, nb = d.parameter_names
        lines.append(f"parameters differ: A has {len(na)}, B {len(nb)} (names or order differ)")
    if d.shape is not None:
        s = d.shape
        if s.node is None:
            lines.append(
                f"graph shape {s.index} exists in only one run "
                f"(first step A {_value(s.first_step_a)}, B {_value(s.first_step_b)})"
            )
        else:
            lines.append(
                f"graph shape {s.index} differs at node {s.node}: "
                f"A op {s.op_a!r} parents {s.parents_a}, B op {s.op_b!r} parents {s.parents_b}"
            )
    if d.first_param_step is not None:
        p = d.param
        lines.append(
            f"parameters first differ at step {d.first_param_step} ({tol}): "
            f"{one_field(p.name)} {p.a!r} vs {p.b!r}"
        )
        if d.update is not None:
            u = d.update
            text = f"  step {u.step}'s update: lr {u.lr_a!r} vs {u.lr_b!r}"
            if u.name is not None:
                text += (
                    f"; first result to differ: {one_field(u.name)} {u.after_a!r} vs {u.after_b!r}"
                )
            lines.append(text)
    if d.first_trace_step is not None:
        lines.append(f"node traces first differ at step {d.first_trace_step}")
        if d.node_value is not None:
            lines.append(f"  first value: {_node(d.node_value)}")
        if d.node_grad is not None:
            lines.append(f"  first gradient: {_node(d.node_grad)}")
    if d.metrics:
        lines += ["", "metrics"]
        rows = [
            [
                one_field(m.name),
                number(m.final_a),
                number(m.final_b),
                f"{number(m.best_a)} @{_value(m.best_step_a)}",
                f"{number(m.best_b)} @{_value(m.best_step_b)}",
                "-" if m.first_diff_step is None else m.first_diff_step,
            ]
            for m in d.metrics
        ]
        lines.append(table(["name", "final A", "final B", "best A", "best B", "differs"], rows))
    diffs = d.differences
    lines += ["", "settings: same" if not diffs else "settings that differ"]
    if diffs:
        rows = [[one_field(s.key), _value(s.a), _value(s.b)] for s in diffs]
        lines.append(table(["key", "A", "B"], rows))
    return "\n".join(lines)


def verify_report(r: VerifyResult) -> str:
    """One line when everything re-computes, the first mismatch otherwise."""
    if r.ok:
        return (
            f"{r.steps} steps, {r.nodes} node values and gradients re-computed exactly"
            + (f"; {r.updates} parameter updates checked ({r.optimizer})" if r.updates else "")
            + (f"; updates not checked: {r.skipped_updates}" if r.skipped_updates else "")
            + (f"; not re-computed: {one_field(r.skipped_nodes)}" if r.skipped_nodes else "")
        )
    m = r.mismatch
    where = f"step {m.step}, node {m.node} (op {m.op or 'leaf'!r}"
    if m.label:
        where += f", label {one_field(m.label)!r}"
    where += ")" if m.node is not None else ""
    if m.node is None:
        where = f"step {m.step}, parameter {one_field(m.label)}"
    return (
        f"MISMATCH at {where}: {m.what} expected {m.expected!r} (recorded), "
        f"got {m.got!r} (re-computed); {r.steps} steps checked before it"
    )
