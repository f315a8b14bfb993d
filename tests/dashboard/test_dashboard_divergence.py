"""The run page on a run that diverges: values through 1e300 to inf to NaN.

Every per-step figure is drawn (or says why not) for every step, the curves mark
the non-finite steps and the smoothed line breaks there.

    python -m pytest tests/test_dashboard_divergence.py -q
"""

from __future__ import annotations

import math

import numpy as np
from gradtrace.dashboard import create_app, curvefigures
from helpers.dash import STEPS, call

from gradtrace import tracer


def test_every_step_draws_its_own_histograms_and_boundary(diverged):
    db, run_id = diverged
    app = create_app(db)
    view = tracer.connect(db, readonly=True).run(run_id)
    weights = view.param_arrays(which="data").to_numpy()
    assert np.nanmax(np.abs(weights[np.isfinite(weights)])) > 1e200  # near the float limit
    assert np.isnan(weights).any()
    meta = {"spec": view.model_spec, "traced": True}
    for step in range(STEPS):
        values = {"run-slider.value": step, "run-id.data": run_id, "run-meta.data": meta}
        resp = call(app, "run-weight-hist.figure", values, "run-slider.value", side=True)
        for out in ("run-weight-hist", "run-grad-hist"):
            title = resp[out]["figure"]["layout"]
            text = title.get("title", {}).get("text") or str(title.get("annotations"))
            assert f"step {step}" in text, (step, out, text)
        row = view.param_arrays(steps=[step], which="data").to_numpy()[0]
        bad = int((~np.isfinite(row)).sum())
        hist = resp["run-weight-hist"]["figure"]
        counted = sum(sum(t["y"]) for t in hist["data"])
        assert counted == len(row) - bad  # every finite weight is in a bin
        if bad:
            assert "NaN/inf" in hist["layout"]["title"]["text"]
        layout = resp["run-boundary"]["figure"]["layout"]
        text = layout.get("title", {}).get("text") or str(layout.get("annotations"))
        assert f"step {step}" in text, (step, text)


def test_curves_mark_nonfinite_steps_and_break_the_smoothed_line(diverged):
    db, run_id = diverged
    metrics = tracer.connect(db, readonly=True).run(run_id).metrics()
    loss = metrics["loss"].to_numpy()
    fig = curvefigures.loss_figure(metrics, 0.6, False, None)
    smooth = fig["data"][1]["y"]
    for k, v in enumerate(loss):
        assert (smooth[k] is None) == (not math.isfinite(v)), k  # no invented values
    marks = fig["data"][2]
    expected = [int(s) for s, v in zip(metrics.index, loss) if not math.isfinite(v)]
    assert marks["x"] == expected
    inf_at = [int(s) for s, v in zip(metrics.index, loss) if v == math.inf]
    assert [t for s, t in zip(marks["x"], marks["text"]) if s in inf_at] == ["+inf"] * len(inf_at)
    assert set(marks["y"]) == {1.0}  # NaN and +inf: the top edge
    assert fig["layout"][marks["yaxis"].replace("y", "yaxis")]["range"] == [0, 1]
