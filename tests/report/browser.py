"""Headless Chromium for the report tests: Debian's ``chromium`` driven by Playwright, nothing ever downloaded.

The browser is the system's (``CAMERAS_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on ``PATH``), launched by
Playwright with ``executable_path``; Playwright's own browser download is never used. Without a browser, or without
the ``playwright`` package, :func:`launch` *fails* the test with the commands that install them: the browser tests
never skip.

:class:`Visit` opens a page and records every request (a request to anything but ``file://`` is aborted and kept in
``blocked``) and every console error or uncaught exception (``errors``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

INSTALL = (
    "install Chromium: `sudo apt-get install -y chromium chromium-driver` on Debian/Ubuntu (`make install` does it "
    "when run as root), or set CAMERAS_CHROMIUM=/path/to/chromium"
)


def chromium_path() -> str:
    """The Chromium executable, or a failed test saying how to install one."""
    given = os.environ.get("CAMERAS_CHROMIUM")
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            pytest.fail(f"CAMERAS_CHROMIUM={given!r} is not an executable file; {INSTALL}", pytrace=False)
        return given
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"the report's browser tests need headless Chromium and none was found; {INSTALL}", pytrace=False)


@contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium browser (Playwright), closed at the end."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the report's browser tests need Playwright: `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install playwright` "
            "(part of the `test` extra; never `playwright install`: the system Chromium is used)",
            pytrace=False,
        )
    exe = chromium_path()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"], timeout=60_000)
        except Exception as err:  # any launch failure gets the same advice
            pytest.fail(f"cannot start {exe}: {str(err).splitlines()[0]}; {INSTALL}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """A page of ``browser`` at ``url`` (1366 × 800, a laptop screen), recording requests and console errors.

    Attributes:
        page: the Playwright page.
        requests: every URL the page asked for.
        blocked: those not under ``file://`` (aborted).
        errors: console errors and uncaught exceptions, as text.
    """

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1366, "height": 800})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on(
            "console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto(url, wait_until="load")

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self, screenshot: Path | None = None) -> None:
        """Save a full-page screenshot (when asked) and close the page."""
        if screenshot is not None:
            self.page.screenshot(path=str(screenshot), full_page=True)
        self.context.close()
