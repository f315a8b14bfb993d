"""The layering is checked by import-linter, against the contracts in pyproject.toml.

import-linter (grimp) reads packages from disk, and an editable install maps
``gradtrace.engine`` and friends to folders it cannot walk from ``gradtrace/``.
So the check lays the sources out as they install, one ``gradtrace/`` tree in a
temporary folder, and runs ``lint-imports`` on that: the same result whatever
the install mode, and a copy we can break on purpose to show the check bites.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("engine", "tracer", "dashboard", "migrations")


def installed_layout(target: Path) -> Path:
    """Copy the Python sources into ``target/gradtrace`` as setuptools installs them."""
    skip = shutil.ignore_patterns("__pycache__", "assets", "*.png")
    shutil.copytree(ROOT / "gradtrace", target / "gradtrace", ignore=skip)
    for name in SUBPACKAGES:
        shutil.copytree(ROOT / name, target / "gradtrace" / name, ignore=skip)
    return target


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
        "lint-imports"
    )
    if lint is None:
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [lint, str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_contract_is_kept(tmp_path):
    done = lint_imports(installed_layout(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    # the check walked every layer's files, not just the root package's four
    analyzed = int(done.stdout.split("Analyzed ")[1].split()[0])
    assert analyzed == sum(1 for _ in (tmp_path / "gradtrace").rglob("*.py"))


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("engine/losses.py", "import gradtrace.tracer.read.store", "the engine imports nothing"),
        ("tracer/read/store.py", "import gradtrace.dashboard.series", "cli > dashboard > tracer"),
        ("dashboard/series.py", "import gradtrace.cli.main", "cli > dashboard > tracer"),
        ("engine/value.py", "import gradtrace.engine.nn", "no import cycles inside a package"),
        ("dashboard/series.py", "import gradtrace.tracer.storage.db", "only the tracer's public"),
        ("cli/format.py", "from gradtrace.tracer.read import runview", "only the tracer's public"),
        ("tracer/storage/models.py", "import gradtrace.tracer.read.store", "analysis > storage"),
        ("tracer/analysis/health.py", "import gradtrace.tracer.read.runview", "analysis > storage"),
        ("tracer/read/store.py", "import gradtrace.tracer.recording.writer", "analysis > storage"),
    ],
)
def test_a_wrong_arrow_breaks_a_contract(tmp_path, module, line, contract):
    tree = installed_layout(tmp_path)
    source = tree / "gradtrace" / module
    source.write_text(source.read_text() + f"\n{line}  # an arrow that must not be\n")
    done = lint_imports(tree)
    assert done.returncode == 1, done.stdout
    broken = done.stdout.split("Broken contracts")[1]
    assert contract in broken
