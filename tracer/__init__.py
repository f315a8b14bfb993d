"""gradtrace's recorder and reader: every number of a training run, in SQL.

from gradtrace import tracer
with tracer.record("moons", db="runs.db", config={"lr": 1.0}) as run:
    run.watch(model)
    ...
    run.log(loss, acc=acc, lr=lr)

store = tracer.connect("runs.db")
store.runs()                       # one row per run
store.run("moons").metrics()       # loss curve as a DataFrame
store.diff("moons", "moons-lr2")   # where two runs part (a RunDiff)
store.run("moons").verify()        # re-compute the recording (a VerifyResult)
store.run("moons").health()        # every neuron: dead, saturated or ok, and since when
store.run("moons").onset()         # when it started going wrong (an Onset), or None
"""

from gradtrace.tracer.errors import (
    AmbiguousRun,
    ConfigError,
    DatabaseURLError,
    GradtraceError,
    InvalidArgument,
    NotAGradtraceDatabase,
    RecorderError,
    RunNotFound,
    SchemaOutdated,
    SchemaTooNew,
)

from gradtrace._lazy import lazy

# Loaded on first use: the recorder pulls in SQLAlchemy and the reading side pandas,
# so a script (or `gradtrace --version`) that needs neither starts faster.
_LAZY = {
    "record": "gradtrace.tracer.recording.recorder",
    "Recorder": "gradtrace.tracer.recording.recorder",
    "connect": "gradtrace.tracer.read.store",
    "Store": "gradtrace.tracer.read.store",
    "RunView": "gradtrace.tracer.read.runview",
    "Origin": "gradtrace.tracer.analysis.origintypes",
    "Onset": "gradtrace.tracer.analysis.onset",
    "ParentValue": "gradtrace.tracer.analysis.origintypes",
    "RunDiff": "gradtrace.tracer.analysis.difftypes",
    "VerifyResult": "gradtrace.tracer.analysis.verify",
}


__getattr__, __dir__ = lazy(__name__, _LAZY)

__all__ = [
    "AmbiguousRun",
    "ConfigError",
    "DatabaseURLError",
    "GradtraceError",
    "InvalidArgument",
    "NotAGradtraceDatabase",
    "Onset",
    "Origin",
    "ParentValue",
    "Recorder",
    "RunDiff",
    "RunView",
    "Store",
    "VerifyResult",
    "connect",
    "RecorderError",
    "RunNotFound",
    "SchemaOutdated",
    "SchemaTooNew",
    "record",
]
