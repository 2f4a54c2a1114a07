"""The scheduler on both backends, with a moved clock instead of sleeps."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from automation.application.ports import KeywordInput
from automation.bootstrap import Services, build
from automation.config import Settings
from automation.domain.estimate import PendingWork
from automation.domain.slot import ScheduledSlot, slot_id
from projections.configs import config_document
from projections.documents import loads
from projections.history import history_body
from tests.clock import MovableClock

START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def wired(settings: Settings, clock: MovableClock) -> Iterator[Services]:
    services = build(settings, clock=clock)
    yield services
    services.close()


def daily_site(
    services: Services, at: str = "02:00", tz: str = "UTC", credits: int = 10_000
) -> tuple[UUID, UUID]:
    app = services.app
    account_id, _ = app.open_account("Acme", credits)
    site_id = app.register_site(account_id, "Shoes", tz).value.id
    app.update_config(account_id, site_id, {"is_enabled": True, "scheduled_time": at})
    services.projector.catch_up()
    return account_id, site_id


def runs_of(services: Services, site_id: UUID) -> list[dict[str, Any]]:
    services.projector.catch_up()
    with services.views.read() as tx:
        runs: list[dict[str, Any]] = loads(history_body(tx, site_id))["runs"]
    return runs


def slot_of(services: Services, site_id: UUID, key: str) -> ScheduledSlot:
    slot = services.app.repository.get(slot_id(site_id, key))
    assert isinstance(slot, ScheduledSlot)
    return slot


def test_a_due_slot_starts_one_scheduled_run(wired: Services, clock: MovableClock) -> None:
    _account_id, site_id = daily_site(wired)
    assert wired.scheduler.check_scheduled_automations().started == []  # 12:00, next is 02:00
    clock.set(datetime(2027, 3, 2, 2, 0, 30, tzinfo=UTC))
    report = wired.scheduler.check_scheduled_automations()
    assert len(report.started) == 1
    assert wired.scheduler.check_scheduled_automations().started == []  # the slot is spent
    runs = runs_of(wired, site_id)
    assert [(r["trigger_type"], r["status"]) for r in runs] == [("scheduled", "running")]
    with wired.views.read() as tx:
        stored = config_document(tx, site_id)
    assert stored is not None
    assert stored["last_run_at"] == "2027-03-02T02:00:30Z"
    assert stored["last_slot"]["outcome"] == "started"


def test_a_slot_that_cannot_start_is_recorded_with_its_reason(
    wired: Services, clock: MovableClock
) -> None:
    account_id, site_id = daily_site(wired)
    manual = wired.app.start_run(account_id, site_id, PendingWork(keywords=4))
    clock.set(datetime(2027, 3, 2, 2, 1, tzinfo=UTC))
    report = wired.scheduler.check_scheduled_automations()
    assert report.started == []
    assert report.skipped == [(site_id, "2027-03-02", "run_in_progress")]
    assert slot_of(wired, site_id, "2027-03-02").reason == "run_in_progress"
    assert [r["run_id"] for r in runs_of(wired, site_id)] == [str(manual.value.id)]


def test_insufficient_credits_skip_the_slot(wired: Services, clock: MovableClock) -> None:
    _, site_id = daily_site(wired, credits=0)
    # With a keyword pending the estimate is above zero, and the account has nothing.
    wired.content.add_keywords(site_id, [KeywordInput("trail shoes")], START)
    clock.set(datetime(2027, 3, 2, 2, 1, tzinfo=UTC))
    report = wired.scheduler.check_scheduled_automations()
    assert report.skipped == [(site_id, "2027-03-02", "insufficient_credits")]
    assert runs_of(wired, site_id) == []


def test_after_a_long_outage_one_catch_up_run_and_the_rest_skipped(
    wired: Services, clock: MovableClock
) -> None:
    _, site_id = daily_site(wired)
    clock.set(datetime(2027, 3, 6, 3, 0, tzinfo=UTC))  # down since before the 2nd's slot
    report = wired.scheduler.check_scheduled_automations()
    assert len(report.started) == 1
    assert [key for _, key, _ in report.skipped] == [
        "2027-03-02",
        "2027-03-03",
        "2027-03-04",
        "2027-03-05",
    ]
    assert slot_of(wired, site_id, "2027-03-06").outcome == "started"
    assert len(runs_of(wired, site_id)) == 1


def test_beyond_the_catch_up_window_nothing_starts(wired: Services, clock: MovableClock) -> None:
    _, site_id = daily_site(wired)
    clock.set(datetime(2027, 3, 3, 1, 0, tzinfo=UTC))  # 23 h after the 2nd's slot
    report = wired.scheduler.check_scheduled_automations()
    assert report.started == []
    assert [(key, why) for _, key, why in report.skipped] == [("2027-03-02", "missed")]
    assert runs_of(wired, site_id) == []


def test_slots_before_the_schedule_was_enabled_are_not_owed(
    wired: Services, clock: MovableClock
) -> None:
    _, _site_id = daily_site(wired)  # enabled at 12:00 on the 1st; 02:00 on the 1st is past
    clock.set(datetime(2027, 3, 1, 23, 0, tzinfo=UTC))
    report = wired.scheduler.check_scheduled_automations()
    assert (report.started, report.skipped) == ([], [])


def test_a_spring_forward_gap_fires_at_the_first_valid_instant(
    wired: Services, clock: MovableClock
) -> None:
    _, site_id = daily_site(wired, at="02:30", tz="Europe/Berlin")
    clock.set(datetime(2027, 3, 28, 0, 59, tzinfo=UTC))  # 01:59 CET; 02:30 does not exist
    wired.scheduler.catch_up_window = timedelta(hours=1)
    slots_before = wired.scheduler.check_scheduled_automations()
    assert slots_before.started == []  # 27th's slot was missed beyond the window, skipped
    clock.set(datetime(2027, 3, 28, 1, 0, 1, tzinfo=UTC))  # 03:00:01 CEST
    assert len(wired.scheduler.check_scheduled_automations().started) == 1
    assert slot_of(wired, site_id, "2027-03-28").fire_at == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def _tick_in_another_process(settings_json: str, now: str, barrier: Any, out: Any) -> None:
    settings = Settings.model_validate_json(settings_json)
    services = build(settings, clock=MovableClock(datetime.fromisoformat(now)))
    try:
        barrier.wait(timeout=30)
        report = services.scheduler.check_scheduled_automations()
        out.put((len(report.started), len(report.skipped)))
    finally:
        services.close()


def test_two_scheduler_processes_start_one_run_per_slot(
    wired: Services, settings: Settings, clock: MovableClock
) -> None:
    sites = [daily_site(wired)[1] for _ in range(5)]
    now = datetime(2027, 3, 4, 2, 5, tzinfo=UTC)  # slots of the 2nd and 3rd missed, 4th due
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    settings_json = settings.model_dump_json(by_alias=True)
    workers = [
        context.Process(
            target=_tick_in_another_process, args=(settings_json, now.isoformat(), barrier, out)
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    started = [out.get(timeout=5) for _ in workers]
    assert sum(s for s, _ in started) == len(sites)  # one run per site and slot, in total
    assert sum(k for _, k in started) == 2 * len(sites)  # each missed slot recorded once
    for site_id in sites:
        runs = runs_of(wired, site_id)
        assert [r["trigger_type"] for r in runs] == ["scheduled"]


def test_a_site_disabled_after_the_view_was_read_is_skipped_as_disabled(
    wired: Services, clock: MovableClock
) -> None:
    account_id, site_id = daily_site(wired)
    # Disabled in the event store, while the read model still lists the site as enabled.
    wired.app.update_config(account_id, site_id, {"is_enabled": False})
    clock.set(datetime(2027, 3, 2, 2, 1, tzinfo=UTC))
    report = wired.scheduler.check_scheduled_automations()
    assert report.skipped == [(site_id, "2027-03-02", "site_disabled")]
    assert runs_of(wired, site_id) == []
