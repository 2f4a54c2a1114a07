"""The console in a real headless Chromium (the OS package, driven by Playwright for Python)
against the service on a real port, on the embedded default: SQLite files and the in-process
bus, with the pipeline's roles running so that runs move."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from automation.bootstrap import Services
from tests.conftest import Api, RunningServer

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# No sandbox: CI runs as root. No QUIC, sync, component updates or background networking:
# the browser itself must not talk to other hosts either.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Conditions are awaited up to this deadline (a loaded machine may be slow), never timed.
expect.set_options(timeout=30_000)


@pytest.fixture
def backend() -> str:
    """Overrides the root conftest's: the console is tested on the embedded default."""
    return "sqlite"


@pytest.fixture
def server(services: Services) -> Iterator[RunningServer]:
    """Overrides the root conftest's: this one runs the pipeline's roles too."""
    with RunningServer(services, pipeline=True) as running:
        yield running


# One browser per module: Playwright's sync API keeps an event loop of its own on the main
# thread while it is open, which later tests' asyncio.run() must not find there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + " — and CI must run the browser tests")
        pytest.skip("!!! " + message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


class Account:
    """An account of the running service: its token and an API client acting for it."""

    def __init__(self, server: RunningServer, credits: int = 1_000_000) -> None:
        account_id, self.token = server.services.app.open_account(
            f"Acme {uuid.uuid4().hex[:6]}", credits
        )
        self.api = Api(server.url, self.token, str(account_id))


@pytest.fixture
def account(server: RunningServer) -> Account:
    return Account(server)


def sign_in(page: Page, server: RunningServer, token: str) -> None:
    """Sign in with the keyboard alone: the token field has the focus when the page opens."""
    page.goto(server.url + "/")
    expect(page.get_by_label("Account token")).to_be_focused()
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sites", exact=True)).to_be_visible()


def site_id_of(page: Page) -> str:
    """The site id in the page's address (#/sites/<id>)."""
    return str(page.evaluate("location.hash")).split("/")[2]
