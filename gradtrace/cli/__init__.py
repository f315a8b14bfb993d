"""The ``gradtrace`` command line: the one layer that may import every other.

$ gradtrace demo --serve
$ gradtrace runs
"""

from gradtrace.cli.main import cli, main

__all__ = ["cli", "main"]
