"""``gradtrace.show(run)``: the run page inline in a notebook, without a notebook.

Dash's ``run`` is replaced by a recorder, so these check what the dashboard asks
Dash for (inline mode, the run's page, 127.0.0.1) and that the page it names is
the run's.

python -m pytest tests/test_notebook.py -q
"""

from __future__ import annotations

import subprocess
import sys

import dash
import pytest
from gradtrace.engine import Value

import gradtrace
from gradtrace import tracer


@pytest.fixture
def runs(tmp_path):
    db = str(tmp_path / "nb.db")
    for name in ("first", "second"):
        with tracer.record(name, db=db) as r:
            r.log(Value(2.0))
    return db


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[dash.Dash, dict]] = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: seen.append((self, kw)))
    return seen


def test_show_a_runview_serves_its_page_inline_on_localhost(runs, calls):
    with tracer.connect(runs, readonly=True) as store:
        view = store.run("first")
        url = gradtrace.show(view, port=8111)
    ((app, kw),) = calls
    assert kw["jupyter_mode"] == "inline"
    assert kw["host"] == "127.0.0.1"
    assert kw["port"] == 8111
    assert kw["jupyter_server_url"] == url == f"http://127.0.0.1:8111/run/{view.id}"
    # the app reads the run's own database: its page names that run
    page = app.server.test_client()
    assert page.get(f"/run/{view.id}/").status_code == 200
    from gradtrace.dashboard.context import context_for

    assert context_for(app).run(view.id).view.name == "first"


def test_show_by_name_needs_db_and_resolves_the_run(runs, calls):
    url = gradtrace.show("second", db=runs)
    with tracer.connect(runs, readonly=True) as store:
        assert url.endswith("/run/" + store.run("second").id)
    assert calls[0][1]["host"] == "127.0.0.1"


def test_show_unknown_run_fails_before_serving(runs, calls):
    with pytest.raises(tracer.RunNotFound):
        gradtrace.show("nope", db=runs)
    with pytest.raises(tracer.InvalidArgument, match="run=42"):
        gradtrace.show(42, db=runs)  # type: ignore[arg-type]
    assert calls == []


def test_tracer_does_not_import_the_dashboard():
    code = "import gradtrace.tracer, sys; print('gradtrace.dashboard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
