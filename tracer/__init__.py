"""gradtrace's recorder and reader: every number of a training run, in SQL.

import tracer
with tracer.record("moons", db="runs.db", config={"lr": 1.0}) as run:
    run.watch(model)
    ...
    run.log(loss, acc=acc, lr=lr)

store = tracer.connect("runs.db")
store.runs()                       # one row per run
store.run("moons").metrics()       # loss curve as a DataFrame
"""

from tracer.errors import (
    AmbiguousRun,
    ConfigError,
    DatabaseURLError,
    GradtraceError,
    NotAGradtraceDatabase,
    RecorderError,
    RunNotFound,
    SchemaOutdated,
    SchemaTooNew,
)
from tracer.recorder import Recorder, record
from tracer.runview import RunView
from tracer.store import Store, connect

__all__ = [
    "AmbiguousRun",
    "ConfigError",
    "DatabaseURLError",
    "GradtraceError",
    "NotAGradtraceDatabase",
    "Recorder",
    "RunView",
    "Store",
    "connect",
    "RecorderError",
    "RunNotFound",
    "SchemaOutdated",
    "SchemaTooNew",
    "record",
]
