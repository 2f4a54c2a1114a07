"""Runs past their time limits (max_paused_hours, max_run_hours) are cancelled by the
service with the reason recorded, freeing the site and the credits, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from automation.application.ports import KeywordInput
from automation.bootstrap import Services, build
from automation.config import Settings
from automation.domain.errors import InvalidValueError
from automation.domain.run import AutomationRun
from projections.logs import last_lines
from tests.clock import MovableClock

START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def wired(settings: Settings, clock: MovableClock) -> Iterator[Services]:
    services = build(settings, clock=clock)
    yield services
    services.close()


def started(services: Services, config: dict[str, Any]) -> tuple[UUID, UUID, UUID]:
    app = services.app
    account_id, _ = app.open_account("Acme", 10_000)
    site_id = app.register_site(account_id, "Shoes", "UTC").value.id
    app.update_config(account_id, site_id, config)
    services.content.add_keywords(site_id, [KeywordInput("trail shoes")], app.clock.now())
    run_id: UUID = app.start_run(
        account_id, site_id, services.content.pending_work(site_id)
    ).value.id
    services.projector.catch_up()
    return account_id, site_id, run_id


def cancelled(services: Services, run_id: UUID) -> list[Any]:
    return [e for e in services.app.events.get(run_id) if isinstance(e, AutomationRun.RunCancelled)]


def test_a_run_paused_past_its_limit_is_cancelled_and_frees_site_and_credits(
    wired: Services, clock: MovableClock
) -> None:
    account_id, site_id, run_id = started(wired, {"max_paused_hours": 2})
    wired.app.pause_run(account_id, run_id)
    wired.projector.catch_up()
    clock.move(timedelta(hours=2))
    assert wired.scheduler.cancel_overdue_runs() == []  # not past it yet
    clock.move(timedelta(minutes=1))
    [(which, reason)] = wired.scheduler.cancel_overdue_runs()
    assert which == run_id
    assert reason == "paused longer than max_paused_hours (2)"
    [event] = cancelled(wired, run_id)
    assert event.reason == reason
    assert wired.app.balance(account_id) == 10_000  # nothing ran: every credit is back
    wired.projector.catch_up()
    with wired.views.read() as tx:
        assert any("cancelled by the service" in line for line in last_lines(tx, run_id, 5))
    # The site is free for the next run.
    assert wired.app.start_run(account_id, site_id, wired.content.pending_work(site_id)).value
    assert wired.scheduler.cancel_overdue_runs() == []  # a run within its limits stays


def test_a_run_running_past_max_run_hours_is_cancelled_and_none_without_a_limit(
    wired: Services, clock: MovableClock
) -> None:
    _, _, limited = started(wired, {"max_run_hours": 1})
    _, _, unlimited = started(wired, {})  # the default: no limit on running
    clock.move(timedelta(hours=100))  # past the limit, within the default 168 h paused
    assert wired.scheduler.cancel_overdue_runs() == [
        (limited, "running longer than max_run_hours (1)")
    ]
    assert cancelled(wired, unlimited) == []


def test_the_limits_are_validated_and_the_run_limit_can_be_lifted(wired: Services) -> None:
    app = wired.app
    account_id, _ = app.open_account("Acme", 0)
    site_id = app.register_site(account_id, "Shoes", "UTC").value.id
    for bad in ({"max_paused_hours": 0}, {"max_run_hours": 8761}, {"max_paused_hours": None}):
        with pytest.raises(InvalidValueError):
            app.update_config(account_id, site_id, bad)
    app.update_config(account_id, site_id, {"max_run_hours": 5})
    app.update_config(account_id, site_id, {"max_run_hours": None})
    site = app.site(account_id, site_id)
    assert site.config["max_run_hours"] is None
    assert site.config["max_paused_hours"] == 168
