"""Debian's chromium, driven by Playwright (never `playwright install`), for the UI tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's synchronous API runs an event loop in this thread while it is
    open, which other tests' `asyncio.run` must not meet."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser tests: /usr/bin/chromium is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def new_page(browser: Any, **options: Any) -> Any:
    """A page whose test code may evaluate script: the pages' Content-Security-Policy
    (script only from the depot's own files) is bypassed for the test's own probes, so the
    hostile-input checks test the sanitiser alone, without that second line."""
    return browser.new_context(bypass_csp=True, **options).new_page()


def screenshot(page: Any, name: str) -> None:
    folder = Path(os.environ.get("DEPOT_TEST_SCREENSHOTS") or "/tmp/depot-ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Any, url: str, secret: str, target: str = "/") -> None:
    page.goto(url + target)
    page.wait_for_url("**/signin**")
    page.fill("#key", secret)
    page.click("form.signin button")
    page.wait_for_load_state("networkidle")
