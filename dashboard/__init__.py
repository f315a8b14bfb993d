"""gradtrace's dashboard: a Plotly Dash app that replays recorded runs.

    >>> from gradtrace.dashboard import serve, show
    >>> serve("runs.db")                      # doctest: +SKIP
    >>> show(run)           # in a notebook: the run page inline   # doctest: +SKIP

It reads runs only through the tracer's public modules (``tracer.connect(db,
readonly=True)``, ``tracer.display``, ``tracer.report``); it never writes. Pages:
``/`` lists the runs, ``/run/<id>`` replays one, ``/compare?runs=id1,id2`` overlays
several.
"""

from gradtrace.dashboard.app import create_app, serve
from gradtrace.dashboard.notebook import show

__all__ = ["create_app", "serve", "show"]
