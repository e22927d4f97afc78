"""Debian's Chromium driven by Playwright, for the tests that need a real browser (`.ci/run` installs Chromium)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync"]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("RAE_REQUIRE_BROWSER") != "1", reason="no /usr/bin/chromium (.ci/run installs it)"
)


@contextmanager
def chromium_page() -> Iterator:
    """A page of a headless Chromium that no test leaves running."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
