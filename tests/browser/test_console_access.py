"""What the console refuses and forgets: a refused config value beside its field, another
account's site and run as not found, and signing out."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import Account, sign_in
from tests.conftest import RunningServer

AUTOMATION = "/api/v1/automation"


def test_an_invalid_config_value_shows_its_error_beside_the_field(
    page: Page, server: RunningServer, account: Account
) -> None:
    site = account.api.site()
    before = account.api.get(f"{AUTOMATION}/config", site_id=site).json()
    refused = account.api.put(
        f"{AUTOMATION}/update_config",
        {"stage_1_batch_size": 0, "scheduled_time": "25:00"},
        site_id=site,
    ).json()["error"]["details"]["fields"]
    sign_in(page, server, account.token)
    page.goto(f"{server.url}/#/sites/{site}/config")
    page.get_by_label("Stage 1 batch size (keywords)").fill("0")
    page.get_by_label("Time (HH:MM, site's timezone)").fill("25:00")
    page.get_by_label("Delay between batches (s)").fill("7")
    page.get_by_role("button", name="Save").click()

    assert "stage_1_batch_size" in refused
    for name in refused:  # every field the service named, with its words, beside the field
        field = page.locator(f"#f-{name}")
        expect(page.locator(f"#err-{name}")).to_have_text(refused[name])
        expect(field).to_have_attribute("aria-invalid", "true")
        # Beside the field: its own description, which a screen reader reads with it.
        expect(field).to_have_attribute("aria-describedby", f"err-{name} hint-{name}")
    expect(page.locator("#f-within_stage_delay")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text("Some values were not accepted")
    # A refused update changes nothing, not even the fields that were valid.
    assert account.api.get(f"{AUTOMATION}/config", site_id=site).json() == before


def test_another_accounts_site_and_run_show_not_found(
    page: Page, server: RunningServer, account: Account
) -> None:
    other = Account(server)
    theirs = other.api.site("Their site")
    sign_in(page, server, account.token)
    for address in (f"#/sites/{theirs}", f"#/sites/{theirs}/config"):
        page.goto(f"{server.url}/{address}")
        expect(page.get_by_role("heading", name="Site not found")).to_be_visible()
        expect(page.get_by_text("Their site")).to_have_count(0)
    page.goto(f"{server.url}/#/runs/{uuid.uuid4()}")
    expect(page.get_by_role("heading", name="Run not found")).to_be_visible()
    # The same address shows the site to its owner.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, other.token)
    page.goto(f"{server.url}/#/sites/{theirs}")
    expect(page.get_by_role("heading", name="Their site")).to_be_visible()


def test_signing_out_ends_the_session(page: Page, server: RunningServer, account: Account) -> None:
    site = account.api.site("Kept private")
    addresses: list[str] = []

    def remember(request: Request) -> None:
        addresses.append(request.url)

    page.on("request", remember)
    sign_in(page, server, account.token)
    page.goto(f"{server.url}/#/sites/{site}")
    expect(page.get_by_role("heading", name="Kept private")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 1

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Account token")).to_be_visible()
    expect(page.locator("main").get_by_text("Signed out.")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    page.goto(f"{server.url}/#/sites/{site}")
    expect(page.get_by_label("Account token")).to_be_visible()
    expect(page.get_by_text("Kept private")).to_have_count(0)
    page.go_back()
    expect(page.get_by_label("Account token")).to_be_visible()
    # The token went in a header every time, never in an address.
    assert addresses
    assert not [a for a in addresses if account.token in a]


def test_a_refused_token_is_said_so(page: Page, server: RunningServer) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Account token").fill("atk_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("This token was not accepted.")
    assert page.evaluate("sessionStorage.length") == 0


def test_run_now_refusals_are_said_in_words(page: Page, server: RunningServer) -> None:
    poor = Account(server, credits=1)
    site = poor.api.site("Too many keywords")
    assert poor.api.keywords(site, [f"keyword {n}" for n in range(40)]).status_code == 201
    estimate = poor.api.get(f"{AUTOMATION}/estimate", site_id=site).json()
    sign_in(page, server, poor.token)
    page.goto(f"{server.url}/#/sites/{site}")
    page.get_by_role("button", name="Run now…").click()
    expect(page.locator("#estimate")).to_contain_text("That is not enough for this run.")
    page.get_by_role("button", name="Start the run").click()
    expect(page.get_by_role("alert")).to_have_text(
        f"Not enough credits: this run needs {estimate['required_credits']} and the free "
        "balance is 1."
    )

    rich = Account(server)
    busy = rich.api.site("Busy")
    assert rich.api.keywords(busy, ["one keyword", "another keyword"]).status_code == 201
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, rich.token)
    page.goto(f"{server.url}/#/sites/{busy}")
    page.get_by_role("button", name="Run now…").click()
    page.get_by_role("button", name="Start the run").wait_for()
    started = rich.api.run_now(busy)  # another client starts a run meanwhile
    assert started.status_code == 202, started.text
    page.get_by_role("button", name="Start the run").click()
    expect(page.get_by_role("alert")).to_have_text("This site already has a run in progress.")
    run_id = started.json()["run_id"]
    assert rich.api.post(f"{AUTOMATION}/cancel", run_id=run_id).status_code == 200
