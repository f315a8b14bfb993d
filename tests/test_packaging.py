"""gradtrace installs one import root, and a user's own modules cannot shadow it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_holds_one_import_root(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("gradtrace-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    name_version = "-".join(wheel.name.split("-")[:2])  # gradtrace-0.1.0
    assert tops == {"gradtrace", f"{name_version}.dist-info"}
    # The guided walk, compiled (optional: a machine without a compiler installs without it).
    walks = [n for n in names if n.startswith("gradtrace/tracer/recording/_guidedwalk.")]
    assert [n.endswith((".so", ".pyd")) for n in walks] == [True], walks
    for needed in (
        "gradtrace/__init__.py",
        "gradtrace/cli/__init__.py",
        "gradtrace/engine/value.py",
        "gradtrace/tracer/recording/recorder.py",
        "gradtrace/dashboard/app.py",
        "gradtrace/dashboard/assets/style.css",
        "gradtrace/migrations/env.py",
        "gradtrace/migrations/alembic.ini",
        "gradtrace/migrations/script.py.mako",
        "gradtrace/migrations/versions/0001_create_schema.py",
    ):
        assert needed in names
    entry = zipfile.ZipFile(wheel).read(f"{sorted(tops - {'gradtrace'})[0]}/entry_points.txt")
    assert b"gradtrace = gradtrace.cli:main" in entry


USER_SCRIPT = """\
import json
import sys

import engine, tracer, dashboard, migrations  # the user's own modules, first on sys.path
assert engine.train_one_epoch() == "user engine"
assert tracer.MINE and dashboard.MINE and migrations.MINE

import gradtrace
from gradtrace.engine import MLP, make_moons
from gradtrace.tracer.recording.demo import moons_loss

db = sys.argv[1]
model = MLP(2, [4, 1], seed=1)
xs, ys = make_moons(16, noise=0.1, seed=2)
with gradtrace.record("shadowed", db=db, config={"lr": 0.1}) as run:
    run.watch(model)
    for _ in range(3):
        loss, acc = moons_loss(model, xs, ys)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        run.log(loss, acc=acc)

view = gradtrace.connect(db, readonly=True).run("shadowed")
metrics = view.metrics()

from gradtrace.dashboard import create_app

client = create_app(db).server.test_client()
page = client.get("/")
layout = client.get("/_dash-layout")
print(json.dumps({
    "steps": len(metrics),
    "loss": [float(x) for x in metrics["loss"]],
    "page": page.status_code,
    "layout": layout.status_code,
    "modules": sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in
                      ("engine", "tracer", "dashboard", "migrations")),
}))
"""


@pytest.mark.slow
def test_a_project_with_its_own_engine_tracer_dashboard_and_migrations(tmp_path):
    """A training project with its own engine.py etc. beside the script still uses gradtrace."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "engine.py").write_text('def train_one_epoch():\n    return "user engine"\n')
    (folder / "tracer.py").write_text("MINE = True\n")
    for package in ("dashboard", "migrations"):
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text("MINE = True\n")
    (folder / "migrations" / "env.py").write_text("raise RuntimeError('not gradtrace')\n")
    (folder / "train.py").write_text(USER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "train.py", str(tmp_path / "runs.db")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    import json

    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["steps"] == 3 and out["page"] == 200 and out["layout"] == 200
    assert all(loss > 0 for loss in out["loss"])
    assert out["modules"] == ["dashboard", "engine", "migrations", "tracer"]  # the user's ones

    version = subprocess.run(
        [sys.executable, "-m", "gradtrace", "--version"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert version.returncode == 0 and version.stdout.startswith("gradtrace, version ")


def test_import_gradtrace_loads_no_layer(tmp_path):
    """The front door is lazy: importing it loads neither SQLAlchemy nor pandas nor Dash."""
    code = textwrap.dedent(
        """
        import sys, gradtrace
        heavy = [m for m in ("sqlalchemy", "pandas", "dash", "numpy", "gradtrace.tracer")
                 if m in sys.modules]
        print("heavy:" + ",".join(heavy))
        assert callable(gradtrace.record) and callable(gradtrace.connect)
        print(gradtrace.__version__)
        """
    )
    done = subprocess.run(
        # an empty folder: `python -c` puts the working directory first on sys.path,
        # and a checkout's parent folder holds a `gradtrace/` folder of its own
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    heavy, version = done.stdout.strip().splitlines()
    assert heavy == "heavy:"
    assert version.count(".") >= 2


def test_the_command_line_starts_without_the_heavy_layers(tmp_path):
    """``gradtrace --version`` and ``--help`` must not wait for pandas, SQLAlchemy or Dash."""
    code = (
        "import sys\n"
        "from gradtrace.cli import cli\n"
        "heavy = [m for m in ('sqlalchemy', 'pandas', 'numpy', 'dash') if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        # an empty folder: `python -c` puts the working directory first on sys.path,
        # and a checkout's parent folder holds a `gradtrace/` folder of its own
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "heavy:"
