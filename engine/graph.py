"""Graph export: Graphviz DOT text in the lecture's ``draw_dot`` style.

    >>> from gradtrace.engine import Value
    >>> print(to_dot(Value(2.0, label="a") * 3).splitlines()[0])
    digraph G {

One record node per value (label | data | grad) and one small node per
operation, left to right. Only text is produced; render it with any Graphviz.
"""

from __future__ import annotations

from gradtrace.engine.value import Value


def _escape(text: str) -> str:
    # Characters that mean something inside a DOT record label.
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


def to_dot(root: Value, rankdir: str = "LR") -> str:
    """DOT text for ``root``'s graph; node ``n<i>`` is node ``i`` of ``root.topo()``."""
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    nodes = root.topo()
    index = {id(v): i for i, v in enumerate(nodes)}
    lines = ["digraph G {", f"  rankdir={rankdir};", "  node [fontname=Helvetica];"]
    for i, v in enumerate(nodes):
        label = _escape(v.label)
        lines.append(
            f'  n{i} [shape=record, label="{{ {label} | data {v.data:.4f} | grad {v.grad:.4f} }}"];'
        )
        if v.op:
            lines.append(f'  n{i}_op [shape=circle, label="{_escape(v._op)}"];')
            lines.append(f"  n{i}_op -> n{i};")
            for p in v.parents:
                lines.append(f"  n{index[id(p)]} -> n{i}_op;")
    lines.append("}")
    return "\n".join(lines) + "\n"
