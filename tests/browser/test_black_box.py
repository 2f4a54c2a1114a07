"""The console against ``automation serve`` as its own process, as a user meets it: an
account made with ``automation admin``, then everything through the browser."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from automation.config import Settings
from tests.support.serve import ADMIN, Serve

QUICK = {"within_stage_delay": "0", "between_stage_delay": "0"}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(Settings(automation_data_dir=tmp_path / "var"), tmp_path / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_first_session_with_automation_serve(page: Page, serve: Serve) -> None:
    made = subprocess.run(
        [*ADMIN, "create-account", "Acme", "--credits", "5000"],
        env=serve.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = json.loads(made.stdout.strip().splitlines()[-1])["token"]
    page.goto(serve.url + "/")
    page.get_by_label("Account token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No sites yet")).to_be_visible()
    page.get_by_label("Name").fill("Trail shoes")
    page.get_by_role("button", name="Create site").click()
    expect(page.get_by_role("heading", name="Trail shoes")).to_be_visible()
    page.get_by_role("link", name="Configuration and schedule").click()
    for name, value in QUICK.items():
        page.locator(f"#f-{name}").fill(value)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    page.get_by_role("link", name="Back to the site").click()
    page.get_by_label("Keywords, one per line").fill("best trail shoes\ntrail running shoes")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 2 keywords (0 duplicates).")).to_be_visible()
    page.get_by_role("button", name="Run now…").click()
    page.get_by_role("button", name="Start the run").click()
    expect(page.get_by_text("The run ended: completed.")).to_be_visible(timeout=120_000)
    expect(page.get_by_role("table", name="Last runs")).to_contain_text("completed")
    page.goto(serve.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Automation runs")
