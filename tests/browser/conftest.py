"""Fixtures for browser tests: Debian's Chromium driven by Playwright, and the example.

Playwright drives the system's ``/usr/bin/chromium`` (no browser download). A
missing Chromium fails every browser test with a message saying what to install;
it never skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.example_server import ExampleServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds that any one browser action or expectation may take.
TIMEOUT_MS = 10_000


# Module scope, not session: while Playwright's sync API runs, its event loop is
# the thread's running loop, and async tests of later modules could not start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): browser tests need Debian's chromium "
            "package (apt-get install chromium), which `bash scripts/test.sh` installs."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: pip install playwright (the test "
            "extra has it). No browser download is needed: it drives "
            f"{CHROMIUM}."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def example_server() -> Iterator[ExampleServer]:
    """The example under ``runserver --noreload``, with a fresh database and demo users."""
    with ExampleServer() as server:
        server.prepare().start()
        yield server
        print(f"--- runserver log:\n{server.log_text()}")


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Make pages that each have their own cookies, like separate browsers."""
    contexts = []

    def make() -> Any:
        context = browser.new_context(viewport={"width": 1100, "height": 640})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page: Any, server: ExampleServer, username: str, next_path: str) -> None:
    """Log in through the example's login form, landing on ``next_path``."""
    page.goto(server.url(f"/accounts/login/?next={next_path}"))
    page.fill("#id_username", username)
    page.fill("#id_password", username)  # the demo users' passwords are their names
    page.click("button[type=submit]")
    page.wait_for_url(server.url(next_path))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run in one environment only: the browser is the same in each."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.newest_env)
