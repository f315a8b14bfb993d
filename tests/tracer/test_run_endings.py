"""However a run ends, its status is written and the user's own error is what they
see (issue 19, items 5 and 9)."""

from __future__ import annotations

import pytest
from helpers.trace import train

from gradtrace import tracer


@pytest.mark.parametrize("background", [True, False], ids=["background", "sync"])
def test_an_error_text_with_a_surrogate_or_nul_still_closes_the_run(db_url, background):
    message = "bad byte \udc80, a NUL \x00 and \u2028 here"
    with (
        pytest.raises(ValueError, match="bad byte") as info,
        tracer.record("odd-error", db=db_url, background=background) as run,
    ):
        list(train(2, run))
        raise ValueError(message)
    assert str(info.value) == message  # the user's error, not UnicodeEncodeError
    with tracer.connect(db_url, readonly=True) as store:
        view = store.run(run.id)
        assert view.status == "failed" and view.info["steps"] == 2
        error = view.info["error"]
    assert "ValueError: bad byte \\udc80, a NUL \\x00 and \u2028 here" in error
