"""Errors a user can act on. Each message names the problem and the fix.

>>> try:
...     raise RunNotFound("no run matches 'abc' in runs.db; `gradtrace runs` lists them")
... except GradtraceError as e:
...     print(e)
no run matches 'abc' in runs.db; `gradtrace runs` lists them
"""


class GradtraceError(Exception):
    """Base class: something the user can fix; the CLI prints it as one line."""


class DatabaseURLError(GradtraceError):
    """The database URL or path cannot be used."""


class NotAGradtraceDatabase(GradtraceError):
    """The file exists but is not (or no longer) a readable gradtrace database."""


class SchemaTooNew(GradtraceError):
    """The database was written by a newer gradtrace than this one."""


class SchemaOutdated(GradtraceError):
    """A read-only open found migrations pending; they need a writable open."""


class ConfigError(GradtraceError):
    """A run's config, name or metric cannot be recorded."""


class InvalidArgument(ConfigError):
    """An argument's value cannot be recorded; the message names it, its value and the fix."""


class RunNotFound(GradtraceError):
    """No run matches the id, prefix or name."""


class AmbiguousRun(GradtraceError):
    """More than one run matches the prefix or name."""


class RecorderError(GradtraceError):
    """The recorder was used out of order, or its writer failed."""
