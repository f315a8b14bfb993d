"""Every example in the tracer's docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import gradtrace.tracer
import pytest

MODULES = [
    m.name
    for m in pkgutil.walk_packages(gradtrace.tracer.__path__, "gradtrace.tracer.")
    if not m.ispkg
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
