"""Headless Chromium for the dashboard's browser tests (dash's ``dash_duo``).

Loaded as a plugin by the browser test module (``pytest_plugins``), so the rest
of the suite does not depend on it. Debian's chromium needs these flags when the
tests run as root in a container; without a display Chromium runs headless even
if ``--headless`` was not passed. A missing browser skips the browser tests with
the reason, except under CI=true, where it fails them.
"""

from __future__ import annotations

import os
import shutil

import pytest
from helpers.ci import IN_CI
from selenium.webdriver.chrome.options import Options

CHROMIUM = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--window-size=1400,1000",
)
_headless_option = {"given": False}


def pytest_configure(config: pytest.Config) -> None:
    _headless_option["given"] = bool(config.getoption("headless", default=False))
    # selenium 4.2 calls an accessor newer urllib3 deprecates, once per WebDriver command
    config.addinivalue_line(
        "filterwarnings", "ignore:HTTPResponse.getheader:DeprecationWarning:selenium"
    )


def pytest_setup_options() -> Options:
    """Chrome options for dash_duo (dash calls this hook before starting the driver)."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    if not _headless_option["given"] and not os.environ.get("DISPLAY"):
        options.add_argument("--headless=new")
    return options


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    if shutil.which("chromedriver") is None:
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return None


@pytest.fixture(scope="session")
def chromium() -> None:
    """Skip (or, with CI=true, fail) when Chromium or chromedriver is missing."""
    reason = missing_browser()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but the browser tests cannot run: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def diverged(tmp_path_factory) -> tuple[str, str]:
    """(database, run id) of ``helpers.dash.diverging_run``: read, never written."""
    from helpers.dash import diverging_run

    db = str(tmp_path_factory.mktemp("div") / "div.db")
    return db, diverging_run(db)
