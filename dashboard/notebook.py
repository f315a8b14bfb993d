"""The run page inline in a Jupyter notebook, through Dash's own Jupyter support.

    >>> import gradtrace
    >>> run = gradtrace.connect("runs.db").run("moons")     # doctest: +SKIP
    >>> gradtrace.show(run)                                  # doctest: +SKIP

The app is served from a thread of the kernel on 127.0.0.1 and shown in an iframe
under the cell; calling ``show`` again on the same port replaces the previous one.
"""

from __future__ import annotations

from gradtrace.dashboard.app import create_app
from gradtrace.dashboard.context import context_for

from gradtrace import tracer

HOST = "127.0.0.1"  # a run can hold anything a script logged: never all interfaces


def show(
    run: tracer.RunView | str,
    db: str | None = None,
    port: int = 8050,
    height: int = 900,
) -> str:
    """Display the run page of ``run`` (a ``RunView``, or an id, id prefix or name
    with ``db``) inline under the notebook cell; returns the page's URL.

    >>> show("moons", db="runs.db")                          # doctest: +SKIP
    'http://127.0.0.1:8050/run/3f2a...'
    """
    if isinstance(run, tracer.RunView):
        if db is None:
            db = run.store.engine.url.render_as_string(hide_password=False)
        ref = run.id
    elif isinstance(run, str) and run:
        ref = run
    else:
        raise tracer.InvalidArgument(
            f"show(run={run!r}): expected a RunView or a run id, id prefix or name; "
            "pass e.g. gradtrace.connect(db).run('moons')"
        )
    app = create_app(db)
    run_id = context_for(app).run(ref).id  # an unknown run fails here, before serving
    url = f"http://{HOST}:{port}/run/{run_id}"
    # Dash's Jupyter mode frames ``jupyter_server_url`` followed by the app's root
    # prefix ("/"); the pages router ignores the trailing slash.
    app.run(
        jupyter_mode="inline",
        jupyter_height=height,
        jupyter_server_url=url,
        host=HOST,
        port=port,
    )
    return url


__all__ = ["show"]
