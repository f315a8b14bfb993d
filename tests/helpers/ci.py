"""Whether the tests run in CI (``CI=true``, as ``.ci/run`` sets it): there, what a test
needs and does not find (PostgreSQL, the browser, the compiled walk) fails the test
instead of skipping it."""

from __future__ import annotations

import os

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
