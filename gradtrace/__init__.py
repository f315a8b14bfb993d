"""gradtrace: a flight recorder for neural-network training.

    >>> import gradtrace
    >>> from gradtrace.engine import MLP, Value
    >>> with gradtrace.record("moons", db="runs.db") as run:    # doctest: +SKIP
    ...     run.watch(model)
    ...     run.log(loss, acc=acc)
    >>> gradtrace.connect("runs.db").run("moons").metrics()     # doctest: +SKIP

The layers, each importing only those below it:

- ``gradtrace.engine``: scalar autograd and a small nn library, pure Python;
- ``gradtrace.tracer``: the recorder, the schema and the pandas reading API;
- ``gradtrace.dashboard``: the Dash app that replays runs;
- ``gradtrace.cli``: the ``gradtrace`` command line, on top of all three.

Names are imported on first use, so ``import gradtrace`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from gradtrace._lazy import lazy

# name -> module that defines it; loaded by __getattr__ on first use
_LAZY = {
    "record": "gradtrace.tracer",
    "connect": "gradtrace.tracer",
    "Recorder": "gradtrace.tracer",
    "Store": "gradtrace.tracer",
    "RunView": "gradtrace.tracer",
    "GradtraceError": "gradtrace.tracer",
    "serve": "gradtrace.dashboard",
    "show": "gradtrace.dashboard",  # the run page inline in a notebook
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradtrace")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


_load, __dir__ = lazy(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata, on first use
        globals()[name] = value = _version()
        return value
    return _load(name)


__all__ = ["__version__", *_LAZY]
