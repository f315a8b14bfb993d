"""Every value a user hands the recorder, checked in one place before anything is written.

    >>> check("seed", 7)
    7
    >>> try:
    ...     check("tags", "abc")
    ... except InvalidArgument as e:
    ...     print(str(e).split(";")[0])
    tags = 'abc': is a str, not a list of strings

Each rule is a row of :data:`RULES`: the argument, a check returning the problem
(or None), and the fix. The limits are the narrowest of SQLite's and
PostgreSQL's, so a value one backend takes is taken by the other too, and text
is stored as valid UTF-8 without NUL (PostgreSQL refuses NUL, and a lone
surrogate, what ``os.fsdecode`` makes of a non-UTF-8 file name, cannot be
encoded at all).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gradtrace.engine import Value
from gradtrace.tracer.errors import DatabaseURLError, GradtraceError, InvalidArgument

NAME_MAX = 200  # String(200) columns: names, experiments, tags, metric names, labels
INT32 = (-(2**31), 2**31 - 1)  # Integer columns (steps) on PostgreSQL
INT64 = (-(2**63), 2**63 - 1)  # BigInteger columns (seed)
CONFIG_DEPTH = 64  # well below the JSON encoders' recursion limits
QUEUE_MAX = 1 << 16
CAPTURES = ("nodes", "params")


_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxdict, _REPR.maxlist = 3, 60, 60, 6, 6


def shown(value: Any, limit: int = 80) -> str:
    """``repr`` cut short (and shallow): control codes and surrogates escaped."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def text_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if not isinstance(value, str):
        return f"is {_kind(value)}, not a string"
    if "\x00" in value:
        return "contains a NUL character (PostgreSQL text and file names cannot hold one)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "contains a lone surrogate (a file name that is not UTF-8?), which is not valid UTF-8"
        )
    return None


def _name(value: Any) -> str | None:
    problem = text_problem(value)
    if problem:
        return problem
    if not value.strip():
        return "is empty"
    if len(value) > NAME_MAX:
        return f"is {len(value)} characters long; the limit is {NAME_MAX}"
    return None


# Columns the readers add beside the metrics: a metric of that name would replace them.
RESERVED_METRICS = ("wall_time",)


def _metric_name(value: Any) -> str | None:
    problem = _name(value)
    if problem is None and value in RESERVED_METRICS:
        return "is the name of the timestamp column metrics() adds"
    return problem


def _int_in(low: int, high: int, what: str) -> Callable[[Any], str | None]:
    def rule(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return f"is {_kind(value)}, not an int"
        if not low <= int(value) <= high:
            return f"is outside {what}"
        return None

    return rule


def _optional(rule: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else rule(value)


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"is {_kind(value)}, not True/False"


def _tags(value: Any) -> str | None:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        return f"is {_kind(value)}, not a list of strings"
    for tag in value:
        problem = _name(tag)
        if problem:
            return f"holds the tag {shown(tag)}, which {problem}"
    return None


def value_like(x: Any) -> bool:
    """Is ``x`` a micrograd-style node: ``.data``, ``.grad``, ``._prev`` and ``._op``?

        >>> value_like(Value(1.0)), value_like(1.0)
        (True, False)

    gradtrace's own Value is one; so are the lecture's class and micrograd's.
    """
    return hasattr(x, "_prev") and hasattr(x, "_op") and hasattr(x, "data") and hasattr(x, "grad")


def _metric_value(value: Any) -> str | None:
    if isinstance(value, Value):
        return None
    if value_like(value):  # a node of the user's own engine: its .data is the number
        data = value.data
        problem = "is a node" if value_like(data) else _metric_value(data)
        return None if problem is None else f"is a node whose .data {problem}"
    if isinstance(value, str | bytes) or value is None:
        return f"is {_kind(value)}, not a number"
    try:
        float(value)  # Python and numpy numbers, 0-d arrays
    except OverflowError:
        return "is too large for a float64"
    except (TypeError, ValueError):
        return f"is {_kind(value)}, not a number"
    return None


def _db(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        return f"is {_kind(value)}, not a path or URL string"
    text = os.fspath(value)
    if not isinstance(text, str):
        return "is a bytes path"
    problem = text_problem(text)
    if problem:
        return problem
    if not text.strip():
        return "is empty"
    if text.rstrip("/") in ("sqlite:", "sqlite+pysqlite:") or ":memory:" in text:
        return "is an in-memory database, lost when the process ends"
    return None


def config_problem(config: Any) -> str | None:
    """Why ``config`` cannot be stored as a JSON object, or None."""
    if not isinstance(config, Mapping):
        return f"is {_kind(config)}, not a dict"
    flat: dict[str, str] = {}  # flattened column name -> the path that made it
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > CONFIG_DEPTH:
            return f"is nested deeper than {CONFIG_DEPTH} levels (at {shown(path, 60)})"
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not isinstance(key, str):
                    return (
                        f"has the key {shown(key)} at {path or 'top level'}: keys must be strings"
                    )
                problem = text_problem(key)
                if problem:
                    return f"has a key {shown(key)} that {problem}"
                sub = f"{path}.{key}" if path else key
                if not (isinstance(value, Mapping) and value):
                    where = f"{path}[{key!r}]" if path else repr(key)
                    if sub in flat:
                        return (
                            f"has {flat[sub]} and {where}, which both read as column config.{sub}"
                        )
                    flat[sub] = where
                stack.append((value, sub, depth + 1))
        elif isinstance(node, list | tuple):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
        elif isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return f"holds {shown(node)} at {path}, which {problem}"
        elif isinstance(node, float) and not math.isfinite(node):
            return f"holds {node!r} at {path}, which JSON cannot store"
        elif node is not None and not isinstance(node, bool | int | float):
            try:
                json.dumps(node)
            except (TypeError, ValueError):
                return f"holds {_kind(node)} at {path}, which JSON cannot store"
    return None


@dataclass(frozen=True)
class Rule:
    """One argument's check and what to do when it fails."""

    check: Callable[[Any], str | None]
    fix: str
    error: type[GradtraceError] = InvalidArgument


RULES: dict[str, Rule] = {
    "name": Rule(_name, f"pass a non-empty string of at most {NAME_MAX} characters"),
    "experiment": Rule(_name, f"pass a non-empty string of at most {NAME_MAX} characters"),
    "tags": Rule(_tags, 'pass a list of non-empty strings, e.g. tags=["baseline"]'),
    "notes": Rule(text_problem, 'pass a string (notes="" for none)'),
    "config": Rule(
        config_problem,
        "pass a dict with string keys and numbers, strings, booleans, lists or dicts "
        "(NaN/inf as strings)",
    ),
    "seed": Rule(
        _optional(_int_in(*INT64, "the 64-bit range both backends store")),
        "pass a seed from -2**63 to 2**63-1",
    ),
    "capture": Rule(
        lambda v: None if v in CAPTURES else "is not a capture mode",
        f"pass one of {', '.join(map(repr, CAPTURES))}",
    ),
    "every": Rule(_int_in(1, INT32[1], "1 to 2**31-1"), "pass a positive int, e.g. every=10"),
    "background": Rule(_bool, "pass True or False"),
    "queue_size": Rule(
        _int_in(1, QUEUE_MAX, f"1 to {QUEUE_MAX}"), "pass a small positive int, e.g. 8"
    ),
    "linear_gc": Rule(_bool, "pass True or False"),
    "readonly": Rule(_bool, "pass True or False"),
    "step": Rule(
        _optional(_int_in(*INT32, "-2**31 to 2**31-1, the step column's range")),
        "pass an int below 2**31, or omit step= to number steps automatically",
    ),
    "metric name": Rule(
        _metric_name,
        f"use a non-empty name of at most {NAME_MAX} characters, other than "
        + ", ".join(RESERVED_METRICS),
    ),
    "metric": Rule(
        _metric_value,
        "log a float, an int or a Value: gradtrace's or any micrograd-style node with "
        ".data, .grad, ._prev and ._op (float('1.5') for text)",
    ),
    "label": Rule(_name, f"use labels of at most {NAME_MAX} characters, valid UTF-8, no NUL"),
    "parameter name": Rule(_name, f"use names of at most {NAME_MAX} characters"),
    "db": Rule(
        _db,
        "pass a file path such as runs.db or a URL such as postgresql+psycopg://...",
        DatabaseURLError,
    ),
}


def check(argument: str, value: Any, shown_as: str | None = None) -> Any:
    """``value`` if it passes ``argument``'s rule; else :class:`InvalidArgument`.

    ``shown_as`` names the argument in the message (``metric 'acc'``, ``tags``...).
    """
    rule = RULES[argument]
    problem = rule.check(value)
    if problem:
        label = shown_as or argument
        raise rule.error(f"{label} = {shown(value)}: {problem}; {rule.fix}")
    return value


def safe_text(text: Any) -> Any:
    """Text made printable and encodable: a lone surrogate becomes U+FFFD. For readers,
    so one bad row written by an older version cannot break every listing."""
    if isinstance(text, str):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return text
    if isinstance(text, dict):
        return {safe_text(k): safe_text(v) for k, v in text.items()}
    if isinstance(text, list):
        return [safe_text(v) for v in text]
    return text
