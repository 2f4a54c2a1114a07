"""Exactly-once effects over at-least-once delivery: redeliveries and crashes at each step
of a batch never process an item twice, skip one, charge twice or duplicate an output."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from automation.adapters import pipeline_store
from automation.adapters.ai_local import LocalAIProvider
from automation.application.ai import AIResult, Idea
from automation.application.pipeline import IDLE, BatchWork, Dispatch
from automation.application.stages import RetryPolicy, StageRunner
from automation.bootstrap import Services, build
from automation.config import Settings
from tests.support.pipeline import (
    KEYWORDS,
    Crash,
    check_exactly_once,
    site_with_keywords,
)


class CountingAI(LocalAIProvider):
    def __init__(self) -> None:
        self.ideas_calls: dict[tuple[str, ...], int] = {}

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        key = (cluster, *keywords)
        self.ideas_calls[key] = self.ideas_calls.get(key, 0) + 1
        return super().generate_ideas(cluster, keywords)


@pytest.fixture
def wired(settings: Settings) -> Iterator[Services]:
    services = build(settings)
    yield services
    services.close()


def drive(services: Services, run_id: UUID, deliver: Any, window: int = 3) -> None:
    """Run the orchestrator's decisions by hand, delivering each batch with ``deliver``:
    up to ``window`` batches at a time, the newest first, so batches complete out of order."""
    for _ in range(10_000):
        outcome = services.app.advance_run(run_id, services.pipeline, window)
        if outcome == IDLE:
            return
        if isinstance(outcome, Dispatch):
            for work in reversed(outcome.new or [f.work for f in outcome.in_flight]):
                deliver(work)
    raise AssertionError("the run did not end")


def start(services: Services) -> tuple[UUID, UUID, UUID, int]:
    account_id, site_id = site_with_keywords(services, KEYWORDS)
    before = services.app.balance(account_id)
    run_id = services.app.start_run(
        account_id, site_id, services.content.pending_work(site_id)
    ).value.id
    return account_id, site_id, run_id, before


CRASH_POINTS = ["before_commit", "inside_commit", "after_commit", "after_record"]


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_a_crash_at_any_step_of_a_batch_loses_and_duplicates_nothing(
    wired: Services, monkeypatch: pytest.MonkeyPatch, crash_point: str
) -> None:
    ai = CountingAI()
    wired.worker.runner = StageRunner(wired.pipeline, ai, RetryPolicy(attempts=1))
    store, app = wired.pipeline, wired.app
    real_commit, real_record = store.commit_batch, app.record_batch
    crashed: set[object] = set()

    def once(work_key: object) -> bool:
        if work_key in crashed:
            return False
        crashed.add(work_key)
        return True

    def commit(
        site_id: UUID,
        run_id: UUID,
        stage: int,
        batch: int,
        item_ids: list[str],
        outputs: list[dict[str, Any]],
        *rest: Any,
    ) -> Any:
        if crash_point == "before_commit" and once((stage, batch)):
            raise Crash
        receipt = real_commit(site_id, run_id, stage, batch, item_ids, outputs, *rest)
        if crash_point == "after_commit" and once((stage, batch)):
            raise Crash
        return receipt

    def record(work: BatchWork, receipt: Any) -> Any:
        written = real_record(work, receipt)
        if crash_point == "after_record" and once((work.stage, work.batch)):
            raise Crash
        return written

    def dying_writer(real: Any) -> Any:
        def write(tx: Any, site: str, outputs: list[dict[str, Any]], at: str) -> None:
            real(tx, site, outputs, at)  # the outputs are written, uncommitted...
            if outputs and once(outputs[0]["id"]):
                raise Crash  # ...when the process dies inside the transaction

        return write

    if crash_point == "inside_commit":
        for stage, writer in list(pipeline_store._WRITERS.items()):
            monkeypatch.setitem(pipeline_store._WRITERS, stage, dying_writer(writer))
    monkeypatch.setattr(store, "commit_batch", commit)
    monkeypatch.setattr(app, "record_batch", record)
    account_id, site_id, run_id, before = start(wired)

    def deliver_until_handled(work: BatchWork) -> None:
        for _ in range(3):  # the bus delivers again after each crash
            try:
                wired.worker.process(work)
                return
            except Crash:
                continue
        raise AssertionError("not handled after redeliveries")

    drive(wired, run_id, deliver_until_handled)
    assert crashed, "the crash point was never reached"
    check_exactly_once(wired, account_id, site_id, run_id, before)
    if crash_point in ("after_commit", "after_record"):
        # The redelivery found the batch's receipt: the AI was not asked again.
        assert set(ai.ideas_calls.values()) == {1}


def test_a_message_delivered_twice_at_once_is_processed_once(wired: Services) -> None:
    ai = CountingAI()
    wired.worker.runner = StageRunner(wired.pipeline, ai, RetryPolicy(attempts=1))
    account_id, site_id, run_id, before = start(wired)

    def deliver_twice_concurrently(work: BatchWork) -> None:
        start_together = threading.Barrier(2)
        errors: list[BaseException] = []

        def one() -> None:
            start_together.wait()
            try:
                wired.worker.process(work)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors

    drive(wired, run_id, deliver_twice_concurrently)
    check_exactly_once(wired, account_id, site_id, run_id, before)
