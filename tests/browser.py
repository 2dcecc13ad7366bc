"""The browser the demo page is tested, timed (bench/) and photographed (demo/screenshots.py) in:
Debian's Chromium, headless, through Playwright (a dev dependency; `playwright install` and its
downloaded browsers are not used). A test tool, not part of cnnlib: the scripts outside tests/
load it by its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")  # `apt-get install -y chromium`
# Headless, and none of Chromium's own connections (updates, sync, ...): a lecture hall, and this
# project's CI, may have no network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, started by a running `sync_playwright()`; returns Playwright's Browser."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
