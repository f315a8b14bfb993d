"""What the run page's loss chart adds for a run that went wrong: a log y axis when
the loss spans many decades (a linear axis shows a blow-up from 1 to 1e10 as a
flat line and one spike), and a marker at the step it started going wrong.

    >>> auto_log(run.metrics()["loss"])                   # doctest: +SKIP
    True
    >>> fig["data"] += onset_marks(1, "It started going wrong at step 0 ...")[0]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradtrace.dashboard.figures import plotly_text

DECADES = 3.0  # a wider range than this reads better on a log axis
ONSET_COLOR = "#dc2626"
OVERLAY = "y91"  # the loss chart's edge-marks overlay: y in [0, 1] over the plot


def auto_log(values: Any, decades: float = DECADES) -> bool:
    """True when the finite positive values span more than ``decades`` powers of 10."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    return bool(len(v)) and float(np.log10(v.max() / v.min())) > decades


def onset_marks(step: int | None, story: str = "") -> tuple[list[dict], dict]:
    """A dashed vertical line labelled "onset" at ``step`` of the loss chart:
    ``(traces, layout)`` to merge in (a trace, not a shape: the replay marker's
    patches rewrite the layout's shapes). Empty without a step."""
    if step is None:
        return [], {}
    trace = {
        "type": "scatter",
        "mode": "lines+text",
        "x": [step, step],
        "y": [0.0, 1.0],
        "text": ["", "onset"],
        "textposition": "bottom right",
        "textfont": {"color": ONSET_COLOR, "size": 11},
        "line": {"color": ONSET_COLOR, "dash": "dash", "width": 1.5},
        "name": "onset",
        "showlegend": False,
        "hovertemplate": plotly_text(story or f"onset: step {step}") + "<extra></extra>",
        "xaxis": "x",
        "yaxis": OVERLAY,
    }
    layout = {
        "yaxis" + OVERLAY[1:]: {
            "overlaying": "y",
            "range": [0, 1],
            "visible": False,
            "fixedrange": True,
        }
    }
    return [trace], layout
