"""The console and the API documentation load from this host alone: any request to another
host fails the test (and is refused, as on an air-gapped machine)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Account, sign_in
from tests.conftest import RunningServer


def test_the_console_and_docs_need_no_other_host(
    page: Page, server: RunningServer, account: Account
) -> None:
    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_here)
    site = account.api.site("Offline")
    sign_in(page, server, account.token)
    page.goto(f"{server.url}/#/sites/{site}")
    expect(page.get_by_role("heading", name="Pipeline")).to_be_visible()
    page.goto(f"{server.url}/#/sites/{site}/config")
    expect(page.get_by_role("heading", name="Schedule preview")).to_be_visible()

    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Automation runs")
    expect(page.locator(".opblock").first).to_be_visible()
    page.wait_for_load_state("networkidle")  # and whatever the rendered page asks for next
    page.goto(server.url + "/redoc")
    expect(page.get_by_role("heading", name="Automation runs").first).to_be_visible()
    # ReDoc adds its attribution's logo (from its CDN) just after this text appears; two
    # frames later the browser has asked for it, or been refused by the page's CSP.
    expect(page.get_by_text("API docs by Redocly")).to_be_visible()
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert elsewhere == []
