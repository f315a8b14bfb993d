"""Screen sizes for the browser tests: a desktop and a phone viewport, set exactly
through Chromium's device emulation (a window size would include its chrome)."""

from __future__ import annotations

import pytest

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
BOTH = pytest.mark.parametrize("size", list(SIZES))


def viewport(dash_duo, size: str) -> None:
    """Make the page ``size`` ("desktop" or "phone") wide and tall, before loading it."""
    width, height = SIZES[size]
    dash_duo.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700},
    )


def sideways(dash_duo) -> tuple[int, int]:
    """(page width, screen width): a page wider than its screen scrolls sideways."""
    return tuple(
        dash_duo.driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
    )
