"""What the dashboard and the command line use of the tracer beyond ``gradtrace.tracer``:
the health tables, two runs side by side, the parameters behind a node, export
checks and the demo runs.

    >>> from gradtrace.tracer.report import health, metric_sides
    >>> health.layers(store.run("moons"))               # doctest: +SKIP
    >>> metric_sides(view_a, view_b)                    # doctest: +SKIP

The upper layers import the tracer through ``gradtrace.tracer`` and the public modules
beside it (this one, :mod:`~gradtrace.tracer.display`, :mod:`~gradtrace.tracer.admin`,
:mod:`~gradtrace.tracer.errors`), never its sub-packages: an import-linter contract in
pyproject.toml says so. The names here are the analyses' own, re-exported.
"""

from __future__ import annotations

from gradtrace.tracer.analysis import health
from gradtrace.tracer.analysis.diff import diff_runs
from gradtrace.tracer.analysis.diffread import metric_series, metric_sides, settings_of
from gradtrace.tracer.analysis.difftypes import SETTINGS, NodeDiff, RunDiff
from gradtrace.tracer.analysis.forensics import upstream_params
from gradtrace.tracer.analysis.onset import Onset, Signal
from gradtrace.tracer.analysis.origintypes import Origin
from gradtrace.tracer.analysis.verify import VerifyResult
from gradtrace.tracer.read.export import check_format, default_folder
from gradtrace.tracer.read.runview import RunView
from gradtrace.tracer.recording import demo

__all__ = [
    "SETTINGS",
    "NodeDiff",
    "Onset",
    "Origin",
    "RunDiff",
    "RunView",
    "VerifyResult",
    "check_format",
    "default_folder",
    "demo",
    "diff_runs",
    "health",
    "metric_series",
    "metric_sides",
    "Signal",
    "settings_of",
    "upstream_params",
]
