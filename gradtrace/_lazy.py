"""Names a package imports on first use, so importing it stays cheap.

    >>> __getattr__, __dir__ = lazy(__name__, {"connect": "gradtrace.tracer.read.store"})

``names`` maps each name to the module defining it; the first access imports that
module and keeps the value in the package, so later accesses are plain lookups.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """A ``__getattr__`` and a ``__dir__`` for ``package`` that load ``names`` lazily."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(names[name]), name)
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
