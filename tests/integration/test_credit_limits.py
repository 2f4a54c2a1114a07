"""A run never charges past what it has reserved: it tops its reservation up from the free
balance, and pauses awaiting credits when there is none, on both stacks.

Each run here is made to cost far more than its estimate: keywords are added after the run
has started (a run takes whatever is waiting at a stage when it gets there).
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation.application.ports import KeywordInput
from automation.bootstrap import Services
from automation.domain.account import Account
from automation.domain.run import AWAITING_CREDITS, AutomationRun
from consumers.runtime import BackgroundRoles
from tests.support import pipeline as stacks
from tests.support.pipeline import (
    KEYWORDS,
    check_exactly_once,
    run_events,
    site_with_keywords,
    until_ended,
)

backend = stacks.backend
stack = stacks.stack
wired = stacks.wired

pytestmark = pytest.mark.anyio

FEW_BATCHES = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "stage_1_batch_size": 4,
    **{f"stage_{n}_batch_size": 50 for n in range(2, 7)},
}
LATE_KEYWORDS = [f"{k} guide {n}" for n in range(3) for k in KEYWORDS]


def of(services: Services, run_id: UUID, kind: type[Any]) -> list[Any]:
    return [e for e in run_events(services, run_id) if isinstance(e, kind)]


def started_then_grown(services: Services, credits_beyond_required: int) -> tuple[UUID, UUID, UUID]:
    """A run started on four keywords, with many more keywords added once it has started,
    for an account holding its required credits and ``credits_beyond_required`` more."""
    account_id, site_id = site_with_keywords(services, KEYWORDS[:4], 0, FEW_BATCHES)
    app = services.app
    pending = services.content.pending_work(site_id)
    required = app.estimate(account_id, site_id, pending)["required_credits"]
    app.grant_credits(account_id, required + credits_beyond_required)
    run_id: UUID = app.start_run(account_id, site_id, pending).value.id
    late = [KeywordInput(k) for k in LATE_KEYWORDS]
    services.content.add_keywords(site_id, late, app.clock.now())
    return account_id, site_id, run_id


async def eventually_paused(services: Services, account_id: UUID, run_id: UUID) -> Any:
    deadline = asyncio.get_running_loop().time() + 60
    while (run := services.app.run(account_id, run_id)).status.value == "running":
        assert asyncio.get_running_loop().time() < deadline, "the run never paused"
        await asyncio.sleep(0.05)
    return run


async def test_a_run_past_its_reservation_tops_it_up_from_the_free_balance(
    wired: Services,
) -> None:
    account_id, site_id, run_id = started_then_grown(wired, 1_000_000)
    granted = wired.app.balance(account_id) + wired.app.run(account_id, run_id).reserved_credits
    reserved_at_start = wired.app.run(account_id, run_id).reserved_credits
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run = await until_ended(wired, account_id, run_id, limit=120)
    finally:
        await roles.stop()
    assert run.status.value == "completed", run.error
    assert run.total_credits_used > reserved_at_start  # it cost more than it reserved
    top_ups = sum(e.amount for e in of(wired, run_id, AutomationRun.ReservationToppedUp))
    assert top_ups >= run.total_credits_used - reserved_at_start
    assert not of(wired, run_id, AutomationRun.RunPaused)
    check_exactly_once(wired, account_id, site_id, run_id, granted)


async def test_a_run_the_account_cannot_pay_for_pauses_then_goes_on_after_a_grant(
    wired: Services,
) -> None:
    account_id, site_id, run_id = started_then_grown(wired, 0)
    granted = wired.app.run(account_id, run_id).reserved_credits
    assert wired.app.balance(account_id) == 0
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        paused = await eventually_paused(wired, account_id, run_id)
        assert paused.status.value == "paused"
        assert paused.pause_reason == AWAITING_CREDITS
        [pause] = of(wired, run_id, AutomationRun.RunPaused)
        assert pause.reason == AWAITING_CREDITS
        # Everything it holds is spent or held for batches still out; nothing more.
        assert wired.app.balance(account_id) == 0
        assert paused.total_credits_used <= granted

        wired.app.grant_credits(account_id, 1_000_000)
        granted += 1_000_000
        assert wired.app.resume_run(account_id, run_id).value == "running"
        run = await until_ended(wired, account_id, run_id, limit=120)
    finally:
        await roles.stop()
    assert run.status.value == "completed", run.error
    check_exactly_once(wired, account_id, site_id, run_id, granted)
    keywords = {e.stage: e for e in of(wired, run_id, AutomationRun.StageCompleted)}
    assert keywords[1].processed == 4 + len(LATE_KEYWORDS)  # nothing was skipped


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=4),
    spare=st.integers(min_value=1, max_value=400),
)
async def test_concurrent_runs_of_one_account_never_take_its_balance_below_zero(
    wired: Services, sizes: list[int], spare: int
) -> None:
    app = wired.app
    account_id, _ = app.open_account("Shared", 0)
    runs: list[tuple[UUID, UUID]] = []
    for n, size in enumerate(sizes):
        site_id = app.register_site(account_id, f"Site {n}", "UTC").value.id
        app.update_config(account_id, site_id, FEW_BATCHES)
        keywords = [KeywordInput(f"{k} {n}") for k in KEYWORDS[:size]]
        wired.content.add_keywords(site_id, keywords, app.clock.now())
        pending = wired.content.pending_work(site_id)
        app.grant_credits(
            account_id, app.estimate(account_id, site_id, pending)["required_credits"]
        )
        runs.append((site_id, app.start_run(account_id, site_id, pending).value.id))
    app.grant_credits(account_id, spare)
    for site_id, _ in runs:  # each run costs more than it reserved
        late = [KeywordInput(f"{k} late {site_id}") for k in KEYWORDS[:6]]
        wired.content.add_keywords(site_id, late, app.clock.now())
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        for _, run_id in runs:
            await eventually_paused(wired, account_id, run_id)
            if (run := app.run(account_id, run_id)).is_active:
                assert run.pause_reason == AWAITING_CREDITS
                app.cancel_run(account_id, run_id)
        for _, run_id in runs:
            await until_ended(wired, account_id, run_id, limit=60)
    finally:
        await roles.stop()
    # The account's history, event by event: its free balance and every reservation stay
    # at zero or above, and what it paid is what the runs consumed.
    balance, held, paid = 0, {}, 0
    for event in app.events.get(account_id):
        match event:
            case Account.CreditsGranted(amount=amount):
                balance += amount
            case Account.CreditsReserved(run_id=run, amount=amount):
                balance -= amount
                held[run] = held.get(run, 0) + amount
            case Account.CreditsCharged(run_id=run, amount=amount):
                from_held = min(held.get(run, 0), amount)
                held[run] = held.get(run, 0) - from_held
                balance -= amount - from_held
                paid += amount
            case Account.ReservationReleased(run_id=run):
                balance += held.pop(run)
        assert balance >= 0
        assert all(value >= 0 for value in held.values())
    assert balance == app.balance(account_id)
    consumed = sum(
        e.amount for _, run_id in runs for e in of(wired, run_id, AutomationRun.CreditsConsumed)
    )
    assert paid == consumed == sum(app.run(account_id, r).total_credits_used for _, r in runs)
