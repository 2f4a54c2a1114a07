"""A worker's record keeps its run's stage busy: the record of a batch dispatches the stage's
next batches (and passes a finished stage on to the next one) in the same save, within the
rules the orchestrator follows; and the orchestrator folds the log's events into its steps
as event-by-event application would. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from automation.adapters.ai_local import LocalAIProvider
from automation.adapters.sql import Tx
from automation.application.pipeline import IDLE, BatchWork, Dispatch, Refill
from automation.application.stages import RetryPolicy, StageRunner
from automation.bootstrap import Services, build
from automation.config import Settings
from consumers.run_steps import react, react_all
from tests.support.pipeline import (
    KEYWORDS,
    Crash,
    check_exactly_once,
    run_events,
    site_with_keywords,
)

WINDOW = 3
ONE_BY_ONE = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    **{f"stage_{stage}_batch_size": 1 for stage in range(1, 7)},
}


@pytest.fixture
def wired(settings: Settings) -> Iterator[Services]:
    services = build(settings)
    # Dispatching workers, as the roles wire them; sending is left to each test.
    services.worker.dispatch_through(services.work_bus, WINDOW)
    yield services
    services.close()


def start(
    services: Services, config: dict[str, Any], keywords: list[str] = KEYWORDS[:4]
) -> tuple[UUID, UUID, UUID, int]:
    account_id, site_id = site_with_keywords(services, keywords, config=config)
    before = services.app.balance(account_id)
    run_id = services.app.start_run(
        account_id, site_id, services.content.pending_work(site_id)
    ).value.id
    return account_id, site_id, run_id, before


def first_batches(services: Services, run_id: UUID) -> list[BatchWork]:
    """What the orchestrator dispatches first: the run's first stage starts, then its window."""
    for _ in range(5):
        outcome = services.app.advance_run(run_id, services.pipeline, WINDOW)
        if isinstance(outcome, Dispatch) and outcome.new:
            return outcome.new
    raise AssertionError("nothing was dispatched")


def names(services: Services, run_id: UUID, after: int = 0) -> list[str]:
    """The run's events after the first ``after``, by name, charges left out."""
    events = run_events(services, run_id)[after:]
    return [type(e).__name__ for e in events if type(e).__name__ != "CreditsConsumed"]


def finish(services: Services, work: BatchWork) -> list[BatchWork]:
    """A worker's whole job on one batch (outputs, record and refill); what it would send."""
    return services.worker.process(work)


def test_a_record_dispatches_the_stages_next_batch_in_its_own_save(
    wired: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id, _, run_id, _ = start(wired, ONE_BY_ONE)
    batches = first_batches(wired, run_id)
    assert len(batches) == WINDOW
    before = len(run_events(wired, run_id))
    saves: list[int] = []
    real_save = wired.app.save

    def save(*aggregates: Any, **kwargs: Any) -> Any:
        saves.append(len(aggregates))
        return real_save(*aggregates, **kwargs)

    monkeypatch.setattr(wired.app, "save", save)
    sent = finish(wired, batches[-1])
    # The one free place of the window is taken by the next keyword, in the record's save.
    assert [(w.stage, w.batch) for w in sent] == [(1, WINDOW + 1)]
    assert names(wired, run_id, before) == ["BatchCompleted", "BatchDispatched"]
    assert len(saves) == 1
    run = wired.app.run(account_id, run_id)
    assert set(run.in_flight) == {(1, 1), (1, 2), (1, WINDOW + 1)}
    taken = {i for f in run.in_flight.values() for i in f["item_ids"]}
    assert len(taken) == WINDOW  # no item twice
    # No keyword is left: the next records only record, until the stage's last one,
    # which completes it and starts the next stage in the same save.
    assert finish(wired, batches[0]) == []
    assert finish(wired, batches[1]) == []
    before = len(run_events(wired, run_id))
    following = finish(wired, sent[0])
    assert {w.stage for w in following} == {2}
    assert names(wired, run_id, before)[:3] == ["BatchCompleted", "StageCompleted", "StageStarted"]


def test_a_stage_paced_by_a_delay_is_left_to_the_orchestrator(wired: Services) -> None:
    _, _, run_id, _ = start(wired, {**ONE_BY_ONE, "within_stage_delay": 5})
    batches = first_batches(wired, run_id)
    assert len(batches) == 1  # one batch at a time under a delay
    before = len(run_events(wired, run_id))
    assert finish(wired, batches[0]) == []
    assert names(wired, run_id, before) == ["BatchCompleted"]


def test_a_paused_run_is_not_refilled(wired: Services) -> None:
    account_id, _, run_id, _ = start(wired, ONE_BY_ONE)
    batches = first_batches(wired, run_id)
    # A batch already with a worker at the pause finishes and is recorded, and no other
    # batch starts.
    work = batches[0]
    receipt = wired.worker.runner.run_batch(
        work.site_id, work.run_id, work.stage, work.batch, work.item_ids, wired.app.clock.now()
    )
    wired.app.pause_run(account_id, run_id)
    before = len(run_events(wired, run_id))
    assert wired.app.record_and_refill(work, receipt, Refill(wired.pipeline, WINDOW)) == []
    assert names(wired, run_id, before) == ["BatchCompleted"]


@pytest.mark.parametrize("between_stage_delay", [0, 5])
def test_the_last_record_of_a_stage_starts_the_next_unless_a_delay_separates_them(
    wired: Services, between_stage_delay: int
) -> None:
    config = {**ONE_BY_ONE, "stage_1_batch_size": 20, "between_stage_delay": between_stage_delay}
    _, _, run_id, _ = start(wired, config)
    (only,) = first_batches(wired, run_id)
    before = len(run_events(wired, run_id))
    sent = finish(wired, only)
    if between_stage_delay:
        assert sent == []
        assert names(wired, run_id, before) == ["BatchCompleted", "StageCompleted"]
    else:
        assert sent
        assert {w.stage for w in sent} == {2}
        assert len(sent) <= WINDOW
        assert names(wired, run_id, before) == [
            "BatchCompleted",
            "StageCompleted",
            "StageStarted",
            *["BatchDispatched"] * len(sent),
        ]


def drive(services: Services, run_id: UUID, deliver: Any) -> None:
    """Deliver every batch a worker sends, and when none is left, take the orchestrator's
    step (stage ends, the review gate, and sending again what a crash lost)."""
    queue: deque[BatchWork] = deque()
    for _ in range(10_000):
        if queue:
            queue.extend(deliver(queue.popleft()))
            continue
        outcome = services.app.advance_run(run_id, services.pipeline, WINDOW)
        if outcome == IDLE:
            return
        if isinstance(outcome, Dispatch):
            queue.extend(outcome.new or [f.work for f in outcome.in_flight])
    raise AssertionError("the run did not end")


@pytest.mark.parametrize("crash_point", ["none", "after_commit", "after_record"])
def test_refilling_workers_keep_every_effect_exactly_once(
    wired: Services, monkeypatch: pytest.MonkeyPatch, crash_point: str
) -> None:
    wired.worker.runner = StageRunner(wired.pipeline, LocalAIProvider(), RetryPolicy(attempts=1))
    store, app = wired.pipeline, wired.app
    real_commit, real_record = store.commit_batch, app.record_and_refill
    crashed: set[tuple[int, int]] = set()

    def once(key: tuple[int, int]) -> bool:
        if key in crashed:
            return False
        crashed.add(key)
        return True

    def commit(*args: Any) -> Any:
        receipt = real_commit(*args)
        if crash_point == "after_commit" and once((args[2], args[3])):
            raise Crash
        return receipt

    def record(work: BatchWork, receipt: Any, refill: Refill) -> list[BatchWork]:
        sent = real_record(work, receipt, refill)
        if crash_point == "after_record" and once((work.stage, work.batch)):
            raise Crash  # recorded and dispatched, and the new batches' messages are lost
        return sent

    monkeypatch.setattr(store, "commit_batch", commit)
    monkeypatch.setattr(app, "record_and_refill", record)
    account_id, site_id, run_id, before = start(wired, ONE_BY_ONE, KEYWORDS)

    def deliver(work: BatchWork) -> list[BatchWork]:
        for _ in range(3):  # the bus delivers again after each crash
            try:
                return finish(wired, work)
            except Crash:
                continue
        raise AssertionError("not handled after redeliveries")

    drive(wired, run_id, deliver)
    if crash_point != "none":
        assert crashed, "the crash point was never reached"
    check_exactly_once(wired, account_id, site_id, run_id, before)


# --- the orchestrator's steps ------------------------------------------------------------


def steps(tx: Tx) -> dict[str, tuple[float | None, int]]:
    rows = tx.fetchall("SELECT run_id, due_at, version FROM run_steps")
    return {str(r[0]): (r[1], int(r[2])) for r in rows}


class _Rollback(Exception):
    pass


def test_folding_events_together_sets_the_steps_that_one_by_one_would(wired: Services) -> None:
    """The run's events of a whole pipeline, plus a paused and a cancelled run, applied one
    by one and in chunks of every size: the same runs have the same next steps."""
    wired.worker.runner = StageRunner(wired.pipeline, LocalAIProvider(), RetryPolicy(attempts=1))
    _, _, run_id, _ = start(wired, ONE_BY_ONE)
    drive(wired, run_id, lambda work: finish(wired, work))
    account_id, other_site = site_with_keywords(wired, KEYWORDS[:2], config=ONE_BY_ONE)
    paused = wired.app.start_run(account_id, other_site, wired.content.pending_work(other_site))
    wired.app.pause_run(account_id, paused.value.id)
    wired.app.resume_run(account_id, paused.value.id)
    wired.app.pause_run(account_id, paused.value.id)
    account_id, third_site = site_with_keywords(wired, KEYWORDS[:2], config=ONE_BY_ONE)
    cancelled = wired.app.start_run(account_id, third_site, wired.content.pending_work(third_site))
    first_batches(wired, cancelled.value.id)
    wired.app.cancel_run(account_id, cancelled.value.id)
    events = [n.event for n in wired.orchestrator.source.read(0, 100_000)]
    assert len(events) > 100
    watchdog = wired.orchestrator.watchdog

    def applied(apply: Any) -> dict[str, tuple[float | None, int]]:
        try:
            with wired.views.write() as tx:
                tx.execute("DELETE FROM run_steps")
                apply(tx)
                result = steps(tx)
                raise _Rollback
        except _Rollback:
            return result
        raise AssertionError("unreachable")

    def one_by_one(tx: Tx) -> None:
        for event in events:
            react(tx, event, watchdog)

    expected = applied(one_by_one)
    assert str(paused.value.id) in expected  # parked: due never
    assert expected[str(paused.value.id)][0] is None
    assert str(run_id) not in expected  # ended: no step
    assert str(cancelled.value.id) not in expected
    for size in (1, 2, 3, 7, 50, len(events)):

        def in_chunks(tx: Tx, size: int = size) -> None:
            for start_at in range(0, len(events), size):
                react_all(tx, events[start_at : start_at + size], watchdog)

        folded = applied(in_chunks)
        assert {k: v[0] for k, v in folded.items()} == {k: v[0] for k, v in expected.items()}
        assert all(folded[k][1] >= 1 for k in folded)
