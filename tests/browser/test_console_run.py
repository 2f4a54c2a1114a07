"""A run watched and steered from the console: sign in, create a site, configure it, import
keywords, start a run, see it advance without a reload, pause, resume, see it complete, and
read its page; the layout at a phone's width."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Account, sign_in, site_id_of
from tests.conftest import RunningServer

AUTOMATION = "/api/v1/automation"
# Stage 1 takes its 12 keywords two at a time, a second apart, so the run is watched while it
# moves; later stages take everything in one batch, so it ends soon after.
SLOW_START = {
    "stage_1_batch_size": "2",
    "within_stage_delay": "1",
    "between_stage_delay": "0",
    **{f"stage_{n}_batch_size": "50" for n in range(2, 7)},
}
KEYWORDS = [f"trail running shoe {n}" for n in range(12)]


def stage_bar(page: Page, stage: int) -> int:
    bar = page.get_by_role("progressbar", name=re.compile(f"^Stage {stage}: "))
    return int(bar.get_attribute("aria-valuenow") or 0)


def configure(page: Page, values: dict[str, str]) -> None:
    page.get_by_role("link", name="Configuration and schedule").click()
    for name, value in values.items():
        page.locator(f"#f-{name}").fill(value)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_role("heading", name="Schedule preview")).to_be_visible()
    page.get_by_role("link", name="Back to the site").click()


def test_a_run_from_sign_in_to_completion(
    page: Page, server: RunningServer, account: Account
) -> None:
    sign_in(page, server, account.token)
    page.get_by_label("Name").fill("Trail shoes")
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create site").click()
    expect(page.get_by_role("heading", name="Trail shoes")).to_be_visible()
    site = site_id_of(page)
    configure(page, SLOW_START)
    config = account.api.get(f"{AUTOMATION}/config", site_id=site).json()
    assert {k: str(config[k]) for k in SLOW_START} == SLOW_START

    page.get_by_label("Keywords, one per line").fill("\n".join(KEYWORDS))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 12 keywords (0 duplicates).")).to_be_visible()

    # Run now shows the estimate and the credits it will reserve before anything starts.
    estimate = account.api.get(f"{AUTOMATION}/estimate", site_id=site).json()
    page.get_by_role("button", name="Run now…").click()
    expect(page.locator("#estimate")).to_contain_text(
        f"Estimated {estimate['estimated_credits']} credits; "
        f"{estimate['required_credits']} will be reserved"
    )
    assert account.api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"] is None
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    page.get_by_role("button", name="Start the run").click()

    # Progress advances on the page from the event stream alone.
    first = page.get_by_role("progressbar", name=re.compile("^Stage 1: "))
    expect(first).to_be_visible()
    seen = stage_bar(page, 1)
    expect(first).not_to_have_attribute("aria-valuenow", str(seen))
    assert stage_bar(page, 1) > seen

    pause = page.get_by_role("button", name="Pause")
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_be_disabled()
    pause.click()
    expect(pause).to_be_disabled()
    expect(resume).to_be_enabled()
    expect(page.get_by_role("button", name="Cancel run")).to_be_enabled()
    run = account.api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
    assert run["status"] == "paused"
    resume.focus()  # the controls work from the keyboard too
    page.keyboard.press("Enter")
    expect(pause).to_be_enabled()
    expect(resume).to_be_disabled()
    if os.environ.get("CONSOLE_SCREENSHOT"):  # the README's picture: docs/console.png
        page.screenshot(path=Path(os.environ["CONSOLE_SCREENSHOT"]))

    expect(page.get_by_text("The run ended: completed.")).to_be_visible(timeout=120_000)
    assert page.evaluate("window.sameDocument") is True
    for stage in range(1, 7):
        expect(page.locator(f'[data-stage="{stage}"]')).to_contain_text("processed")
    history = account.api.get(f"{AUTOMATION}/history", site_id=site).json()["runs"]
    assert [r["status"] for r in history] == ["completed"]

    check_run_page(page, account, run["run_id"])
    check_phone_width(page, server, site, run["run_id"])


def check_run_page(page: Page, account: Account, run_id: str) -> None:
    """The run's page: its timeline, time travel, log tail and credits chart."""
    page.get_by_role("link", name="Run details").click()
    events = account.api.get(f"{AUTOMATION}/runs/{run_id}/events", limit=1000).json()["events"]
    expect(page.get_by_role("heading", name="Event timeline")).to_have_text(
        f"Event timeline ({len(events)})"
    )
    state = account.api.get(f"{AUTOMATION}/runs/{run_id}/state").json()["run"]
    for stage in state["stages"]:
        bar = page.get_by_role("progressbar", name=f"Stage {stage['stage']} credits")
        expect(bar).to_have_attribute("aria-valuenow", str(stage["credits_used"]))
    page.get_by_role("button", name="Show the state after event 1", exact=True).click()
    expect(page.get_by_text("After event 1:")).to_contain_text("running")
    expect(page.locator("#version-now")).to_have_text("1")
    expect(page.locator("pre.log")).to_contain_text("Run started (manual)")


# Controls with no name a screen reader could say: no label, no aria-label, no text.
UNNAMED = """[...document.querySelectorAll('input, select, textarea, button, [role=progressbar]')]
  .filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
  .map(e => e.outerHTML)"""


def check_phone_width(page: Page, server: RunningServer, site: str, run_id: str) -> None:
    """At a phone's width nothing but the tables' own boxes scrolls sideways; on every page
    each control has a name."""
    page.set_viewport_size({"width": 390, "height": 844})
    for address in ("/#/", f"/#/sites/{site}", f"/#/sites/{site}/config", f"/#/runs/{run_id}"):
        page.goto(server.url + address)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (address, width)
        assert page.evaluate(UNNAMED) == [], address
