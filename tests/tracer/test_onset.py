"""When a run started going wrong, on runs where that step is known by construction.

python -m pytest tests/tracer/test_onset.py -q
"""

from __future__ import annotations

import pytest
from gradtrace.tracer.analysis.onset import onset
from helpers.dash import diverging_run
from helpers.health import (
    LR_JUMP,
    TARGET_JUMP,
    healthy_run,
    lr_jump_run,
    target_jump_run,
)

from gradtrace import tracer


def test_an_lr_jump_starts_with_that_steps_update(db_url):
    run_id = lr_jump_run(db_url)
    run = tracer.connect(db_url, readonly=True).run(run_id)
    found = run.onset()
    assert (found.step, found.kind) == (LR_JUMP, "update")
    first = found.first
    d = run.param_arrays(steps=[LR_JUMP, LR_JUMP + 1], which="data").to_numpy()
    layer = run.parameters()["layer"].to_numpy()
    idx = layer == int(first.what.split()[-1])
    moved = float(((d[1, idx] - d[0, idx]) ** 2).sum() ** 0.5)
    assert first.value == pytest.approx(moved, rel=1e-12) and first.value > first.reference
    loss = next(s for s in found.signals if s.kind == "loss")
    assert loss.step == LR_JUMP + 1  # the loss shows it one step later
    assert f"step {LR_JUMP}" in found.story and "update/data ratio" in found.story
    assert run.onset(until=LR_JUMP - 1) is None  # every earlier step was ordinary


def test_a_target_jump_starts_with_the_loss_before_any_update(db_url):
    run_id = target_jump_run(db_url)
    run = tracer.connect(db_url, readonly=True).run(run_id)
    found = run.onset()
    assert (found.step, found.kind, found.what) == (TARGET_JUMP, "loss", "loss")
    losses = run.metrics()["loss"]
    assert found.first.value == losses.loc[TARGET_JUMP]
    assert found.first.reference == losses.loc[: TARGET_JUMP - 1].abs().max()
    kinds = {(s.step, s.kind) for s in found.signals}
    assert (TARGET_JUMP, "gradient") in kinds  # the gradient grew with the error


def test_a_quiet_run_has_no_onset(db_url):
    run_id = healthy_run(db_url)
    run = tracer.connect(db_url, readonly=True).run(run_id)
    assert run.onset() is None
    with pytest.raises(tracer.InvalidArgument, match="factor"):
        run.onset(factor=1)


def test_the_onset_comes_before_the_first_nonfinite(tmp_path):
    db = str(tmp_path / "div.db")
    run_id = diverging_run(db)
    run = tracer.connect(db, readonly=True).run(run_id)
    origin = run.first_nonfinite()
    found = onset(run, until=origin.step)
    assert found.step < origin.step
    assert found.step == 0 and found.kind == "update"  # lr 1e40: the first update


def test_why_prints_the_onset_before_the_first_nonfinite(tmp_path):
    from click.testing import CliRunner

    from gradtrace.cli import cli

    db = str(tmp_path / "div.db")
    run_id = diverging_run(db)
    run = tracer.connect(db, readonly=True).run(run_id)
    result = CliRunner().invoke(cli, ["why", run_id, "--db", db])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    went = run.onset(until=run.first_nonfinite().step)
    assert lines[0] == run.first_nonfinite().story
    assert f"onset      step {went.step}: {went.story}" in lines
    db = str(tmp_path / "jump.db")
    run_id = lr_jump_run(db)
    result = CliRunner().invoke(cli, ["why", run_id, "--db", db])
    story = tracer.connect(db, readonly=True).run(run_id).onset().story
    assert result.output.splitlines()[1:] == [story]  # finite, but it blew up
