"""Steering a run while the roles move it: pause, cancel, durable delays and the watchdog.

Each test runs on the embedded stack (SQLite, in-process bus) and on the production stack
(PostgreSQL, RabbitMQ), reusing the fixtures of test_pipeline.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from automation.adapters.ai_local import LocalAIProvider
from automation.application.ai import AIResult, Idea
from automation.application.pipeline import BatchWork, Dispatch
from automation.application.stages import RetryPolicy, StageRunner
from automation.bootstrap import Services, build
from automation.config import Settings
from consumers.runtime import BackgroundRoles
from tests.clock import MovableClock
from tests.support import pipeline as stacks
from tests.support.pipeline import (
    KEYWORDS,
    check_exactly_once,
    items,
    run_events,
    site_with_keywords,
    until_ended,
)

# The stacks (embedded; PostgreSQL with RabbitMQ) and their wired services, as in
# test_pipeline: pytest finds fixtures by their names in this module.
backend = stacks.backend
stack = stacks.stack
wired = stacks.wired

pytestmark = pytest.mark.anyio

# One batch per stage, except stage 1 which takes two: few batches, so a run with a delay
# of a second between batches still ends in a few seconds.
FEW_BATCHES = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "stage_1_batch_size": 2,
    "stage_2_batch_size": 50,
    "stage_3_batch_size": 50,
    "stage_4_batch_size": 50,
    "stage_5_batch_size": 50,
    "stage_6_batch_size": 50,
}
FOUR_KEYWORDS = KEYWORDS[:4]


def named(services: Services, run_id: UUID, name: str) -> list[Any]:
    return [e for e in run_events(services, run_id) if type(e).__name__ == name]


async def eventually(what: str, check: Callable[[], bool], limit: float = 20) -> None:
    """Wait (polling) until ``check`` holds, failing after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        assert loop.time() < deadline, f"timed out after {limit} s waiting for {what}"
        await asyncio.sleep(0.02)


def start(services: Services, account_id: UUID, site_id: UUID) -> UUID:
    run_id: UUID = services.app.start_run(
        account_id, site_id, services.content.pending_work(site_id)
    ).value.id
    return run_id


# --- pause ---------------------------------------------------------------------------------


async def test_a_paused_run_makes_no_progress_and_completes_once_resumed(
    wired: Services,
) -> None:
    account_id, site_id = site_with_keywords(
        wired, FOUR_KEYWORDS, config={**FEW_BATCHES, "within_stage_delay": 1}
    )
    balance_before = wired.app.balance(account_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = start(wired, account_id, site_id)
        await eventually("the first batch", lambda: bool(named(wired, run_id, "BatchCompleted")))
        assert wired.app.pause_run(account_id, run_id).value == "paused"
        dispatched = len(named(wired, run_id, "BatchDispatched"))
        completed = len(named(wired, run_id, "BatchCompleted"))
        assert completed in (dispatched - 1, dispatched)  # at most one batch in flight

        await asyncio.sleep(0.5)  # a batch already being processed may finish meanwhile
        events_after_pause = len(run_events(wired, run_id))
        counts_after_pause = wired.content.counts(site_id)
        # No batch started after the pause; one in flight may have been kept.
        assert len(named(wired, run_id, "BatchDispatched")) == dispatched
        assert len(named(wired, run_id, "BatchCompleted")) in (completed, dispatched)

        await asyncio.sleep(2.5)  # more than two of the run's within-stage delays
        assert len(run_events(wired, run_id)) == events_after_pause
        assert len(named(wired, run_id, "BatchDispatched")) == dispatched
        assert wired.content.counts(site_id) == counts_after_pause
        paused = wired.app.run(account_id, run_id)
        assert paused.status.value == "paused"
        assert paused.stages[1]["processed"] < len(FOUR_KEYWORDS)  # work was left to do

        assert wired.app.resume_run(account_id, run_id).value == "running"
        run = await until_ended(wired, account_id, run_id, limit=60)
    finally:
        await roles.stop()
    assert run.status.value == "completed", run.error
    check_exactly_once(wired, account_id, site_id, run_id, balance_before)
    keywords = items(wired, "keywords", site_id)
    assert len(keywords) == len(FOUR_KEYWORDS)
    assert {k["status"] for k in keywords} == {"clustered"}
    assert all(pending == 0 for pending, _ in wired.content.counts(site_id).values())


# --- cancel --------------------------------------------------------------------------------


class GatedIdeas(LocalAIProvider):
    """An AI provider whose first ideas call waits at a gate the test opens."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.go = threading.Event()
        self._lock = threading.Lock()
        self._first = True
        self.gated: str | None = None  # the name of the cluster held at the gate

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.gated = cluster
            self.entered.set()
            self.go.wait(timeout=20)
        return super().generate_ideas(cluster, keywords)


async def test_a_cancel_keeps_the_batch_in_flight_starts_no_other_and_frees_the_site(
    wired: Services,
) -> None:
    provider = GatedIdeas()
    wired.worker.runner = StageRunner(wired.pipeline, provider, RetryPolicy(attempts=1))
    account_id, site_id = site_with_keywords(wired, KEYWORDS)
    balance_before = wired.app.balance(account_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = start(wired, account_id, site_id)
        await eventually("a stage 2 batch in a worker's hands", provider.entered.is_set)
        assert wired.app.cancel_run(account_id, run_id).value == "cancelled"
        # The site and the rest of the reservation are free at once.
        assert (
            wired.app.balance(account_id)
            == balance_before - wired.app.run(account_id, run_id).total_credits_used
        )
        provider.go.set()

        def in_flight_recorded() -> bool:
            # Several batches of a stage may be in flight: every one of them finishes.
            done = {(e.stage, e.batch) for e in named(wired, run_id, "BatchCompleted")}
            sent = {(e.stage, e.batch) for e in named(wired, run_id, "BatchDispatched")}
            return any(stage == 2 for stage, _ in done) and sent <= done

        await eventually("the batches in flight to finish", in_flight_recorded)
        settled = len(run_events(wired, run_id))
        await asyncio.sleep(1.0)  # time for any further batch to (wrongly) start
        assert len(run_events(wired, run_id)) == settled
    finally:
        provider.go.set()
        await roles.stop()

    run = wired.app.run(account_id, run_id)
    assert run.status.value == "cancelled"
    events = run_events(wired, run_id)
    names = [type(e).__name__ for e in events]
    after_cancel = names[names.index("RunCancelled") + 1 :]
    # Only the batch(es) being processed are recorded (and charged) after the cancel; the
    # gated one is among them.
    assert set(after_cancel) <= {"BatchCompleted", "CreditsConsumed"}
    assert after_cancel.count("BatchCompleted") >= 1
    dispatched = [e for e in events if type(e).__name__ == "BatchDispatched"]
    completed = [e for e in events if type(e).__name__ == "BatchCompleted"]
    # Every dispatched batch is recorded once (batches side by side finish in any order).
    assert sorted((e.stage, e.batch) for e in dispatched) == sorted(
        (e.stage, e.batch) for e in completed
    )
    assert len(completed) == len({(e.stage, e.batch) for e in completed})
    assert dispatched[-1].stage == 2  # no batch started after the gated one
    # Its results are kept ...
    last = completed[-1]
    assert last.stage == 2
    assert last.output_ids
    ideas = items(wired, "ideas", site_id)
    assert sorted(i["id"] for i in ideas) == sorted(
        i for e in completed if e.stage == 2 for i in e.output_ids
    )
    assert not items(wired, "content", site_id)
    # ... and charged: the account paid exactly what the run used, the last batch included.
    consumed = [e for e in events if type(e).__name__ == "CreditsConsumed"]
    assert any(e.stage == 2 for e in consumed)
    assert sum(e.amount for e in consumed) == run.total_credits_used
    stage_2 = sum(e.credits for e in completed if e.stage == 2)
    assert run.stages[2]["credits_used"] == stage_2 >= last.credits > 0
    assert wired.app.balance(account_id) == balance_before - run.total_credits_used
    # The site is free: a new run starts.
    again = wired.app.start_run(account_id, site_id, wired.content.pending_work(site_id))
    assert again.value.status.value == "running"


async def test_a_batch_being_processed_at_the_pause_finishes_and_is_kept(
    wired: Services,
) -> None:
    provider = GatedIdeas()
    wired.worker.runner = StageRunner(wired.pipeline, provider, RetryPolicy(attempts=1))
    account_id, site_id = site_with_keywords(wired, KEYWORDS)
    balance_before = wired.app.balance(account_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = start(wired, account_id, site_id)
        await eventually("a stage 2 batch in a worker's hands", provider.entered.is_set)
        assert wired.app.pause_run(account_id, run_id).value == "paused"
        dispatched = len(named(wired, run_id, "BatchDispatched"))
        provider.go.set()
        await eventually(
            "the batch held at the gate to finish",
            lambda: gated_batch_recorded(wired, provider, site_id, run_id),
        )
        settled = len(run_events(wired, run_id))
        counts = wired.content.counts(site_id)
        await asyncio.sleep(1.0)
        assert len(run_events(wired, run_id)) == settled
        assert len(named(wired, run_id, "BatchDispatched")) == dispatched
        assert wired.content.counts(site_id) == counts
        assert items(wired, "ideas", site_id)  # the batch's results are kept
        assert wired.app.run(account_id, run_id).status.value == "paused"

        assert wired.app.resume_run(account_id, run_id).value == "running"
        run = await until_ended(wired, account_id, run_id, limit=60)
    finally:
        provider.go.set()
        await roles.stop()
    assert run.status.value == "completed", run.error
    check_exactly_once(wired, account_id, site_id, run_id, balance_before)


def gated_batch_recorded(
    services: Services, provider: GatedIdeas, site_id: UUID, run_id: UUID
) -> bool:
    """Whether the stage 2 batch that held the gated cluster has been recorded (other
    batches of the stage may be in flight beside it)."""
    cluster = next(
        c["id"] for c in items(services, "clusters", site_id) if c["name"] == provider.gated
    )
    held = [
        (e.stage, e.batch)
        for e in named(services, run_id, "BatchDispatched")
        if e.stage == 2 and cluster in e.item_ids
    ]
    done = {(e.stage, e.batch) for e in named(services, run_id, "BatchCompleted")}
    return bool(held) and held[0] in done


# --- durable delays ------------------------------------------------------------------------


async def test_stages_wait_out_the_delay_between_them_with_many_batches_in_flight(
    wired: Services,
) -> None:
    # Several batches of a stage finish side by side; whichever step fires after the
    # stage completed (a worker's refill may complete it) still waits out the delay.
    config = {**FEW_BATCHES, "between_stage_delay": 1, "stage_2_batch_size": 1}
    account_id, site_id = site_with_keywords(wired, KEYWORDS, config=config)
    assert wired.settings.batches_in_flight > 1
    run_id = start(wired, account_id, site_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run = await until_ended(wired, account_id, run_id, limit=90)
    finally:
        await roles.stop()
    assert run.status.value == "completed", run.error
    events = run_events(wired, run_id)
    completed = {e.stage: e.at for e in events if type(e).__name__ == "StageCompleted"}
    started = {e.stage: e.at for e in events if type(e).__name__ == "StageStarted"}
    gaps = {n: (started[n + 1] - completed[n]).total_seconds() for n in range(1, 7)}
    assert all(gap >= 1 for gap in gaps.values()), gaps


async def test_a_delay_between_batches_survives_a_restart(stack: Settings) -> None:
    clock = MovableClock()
    services = build(stack, clock=clock)
    config = {**FEW_BATCHES, "within_stage_delay": 600, "stage_1_batch_size": 5}
    try:
        services.start_following()
        services.projector.start(poll_interval=0.2)
        account_id, site_id = site_with_keywords(services, KEYWORDS, config=config)
        roles = BackgroundRoles(services, orchestrator=True, workers=True)
        await roles.start()
        try:
            run_id = start(services, account_id, site_id)
            await eventually(
                "the first batch", lambda: bool(named(services, run_id, "BatchCompleted"))
            )
            await asyncio.sleep(1.5)
            # The ten-minute delay holds: no second batch.
            assert len(named(services, run_id, "BatchDispatched")) == 1
        finally:
            await roles.stop()
    finally:
        services.close()  # the process goes away

    later = MovableClock(clock.now() + timedelta(seconds=601))
    restarted = build(stack, clock=later)
    try:
        restarted.start_following()
        restarted.projector.start(poll_interval=0.2)
        assert len(named(restarted, run_id, "BatchDispatched")) == 1
        roles = BackgroundRoles(restarted, orchestrator=True, workers=True)
        await roles.start()
        try:
            await eventually(
                "the second batch after the restart",
                lambda: len(named(restarted, run_id, "BatchDispatched")) >= 2,
                limit=5,
            )
            await eventually(
                "the second batch to be processed",
                lambda: len(named(restarted, run_id, "BatchCompleted")) >= 2,
                limit=10,
            )
            await asyncio.sleep(0.5)
            # The delay applies again after the second batch: the clock has not moved.
            assert len(named(restarted, run_id, "BatchDispatched")) == 2
        finally:
            await roles.stop()
        batches = [(e.stage, e.batch) for e in named(restarted, run_id, "BatchDispatched")]
        assert batches == [(1, 1), (1, 2)]
    finally:
        restarted.close()


# --- the watchdog --------------------------------------------------------------------------


def dispatched_unsent(services: Services, run_id: UUID) -> BatchWork:
    """The orchestrator's decision taken and recorded, the run's first batch dispatched,
    but its message lost: never sent."""
    for _ in range(5):
        outcome = services.app.advance_run(run_id, services.pipeline)
        if isinstance(outcome, Dispatch) and outcome.new:
            return outcome.new[0]
    raise AssertionError("no batch was dispatched")


def died_with_a_batch_unsent(stack: Settings) -> tuple[UUID, UUID, UUID, BatchWork, int]:
    """A process starts a run and dispatches its first batches, then goes away without
    sending them: (account, site, run, the first batch, the balance before the run)."""
    services = build(stack)
    try:
        account_id, site_id = site_with_keywords(services, KEYWORDS)
        balance_before = services.app.balance(account_id)
        run_id = start(services, account_id, site_id)
        return account_id, site_id, run_id, dispatched_unsent(services, run_id), balance_before
    finally:
        services.close()  # the process goes away, the messages never sent


@contextmanager
def restarted(stack: Settings) -> Iterator[Services]:
    """The services of a new process on the same stack, following the log."""
    services = build(stack)
    try:
        services.start_following()
        services.projector.start(poll_interval=0.2)
        yield services
    finally:
        services.close()


def recorded_once(
    services: Services, work: BatchWork, account_id: UUID, site_id: UUID, balance_before: int
) -> None:
    """The batch was recorded once, and the run's effects are exactly once."""
    completed = [(e.stage, e.batch) for e in named(services, work.run_id, "BatchCompleted")]
    assert completed.count((work.stage, work.batch)) == 1
    check_exactly_once(services, account_id, site_id, work.run_id, balance_before)


async def with_roles_until_ended(services: Services, account_id: UUID, run_id: UUID) -> None:
    """The orchestrator and workers of ``services`` take the run to completion, within 30 s
    (far less than the 300 s watchdog)."""
    roles = BackgroundRoles(services, orchestrator=True, workers=True)
    await roles.start()
    try:
        run = await until_ended(services, account_id, run_id, limit=30)
    finally:
        await roles.stop()
    assert run.status.value == "completed", run.error


async def test_a_lost_work_message_is_sent_again_by_the_watchdog(stack: Settings) -> None:
    clock = MovableClock()
    services = build(stack.model_copy(update={"batch_watchdog": 1.0}), clock=clock)
    try:
        services.start_following()
        services.projector.start(poll_interval=0.2)
        account_id, site_id = site_with_keywords(services, KEYWORDS)
        balance_before = services.app.balance(account_id)
        run_id = start(services, account_id, site_id)
        work = dispatched_unsent(services, run_id)
        assert (work.stage, work.batch) == (1, 1)
        services.orchestrator.follow()

        roles = BackgroundRoles(services, orchestrator=True, workers=True)
        await roles.start()
        try:
            await asyncio.sleep(0.5)
            # Before the watchdog's time nothing is sent: the batch stays unprocessed.
            assert not named(services, run_id, "BatchCompleted")
            assert services.app.run(account_id, run_id).in_flight
            clock.move(timedelta(seconds=2))
            services.orchestrator.wake_threadsafe()
            run = await until_ended(services, account_id, run_id, limit=60)
        finally:
            await roles.stop()
        assert run.status.value == "completed", run.error
        dispatched = [(e.stage, e.batch) for e in named(services, run_id, "BatchDispatched")]
        assert dispatched.count((1, 1)) == 1  # sent again, not dispatched anew
        completed = [(e.stage, e.batch) for e in named(services, run_id, "BatchCompleted")]
        assert completed.count((1, 1)) == 1  # the lost batch was processed, once
        check_exactly_once(services, account_id, site_id, run_id, balance_before)
    finally:
        services.close()


async def test_a_restart_sends_the_batches_in_flight_at_once(stack: Settings) -> None:
    """A process dies with a batch dispatched (saved) but its message not sent, or sent
    over the in-process bus, which goes with the process. The restarted orchestrator sends
    it at once, long before the watchdog (300 s here), and it is processed once."""
    account_id, site_id, run_id, work, balance_before = died_with_a_batch_unsent(stack)

    with restarted(stack) as services:
        assert services.settings.batch_watchdog == 300
        await with_roles_until_ended(services, account_id, run_id)
        dispatched = [(e.stage, e.batch) for e in named(services, run_id, "BatchDispatched")]
        assert dispatched.count((work.stage, work.batch)) == 1  # sent again, not dispatched anew
        recorded_once(services, work, account_id, site_id, balance_before)


async def test_batches_whose_resend_fails_at_a_restart_are_sent_again_soon(
    stack: Settings,
) -> None:
    """As above, but the broker refuses every send the restarted orchestrator makes while
    it sends the batches in flight (it is still coming up). Those batches are tried again
    about a second later, not left to the watchdog (300 s here)."""
    account_id, site_id, run_id, work, balance_before = died_with_a_batch_unsent(stack)

    with restarted(stack) as services:
        orchestrator, bus = services.orchestrator, services.work_bus
        refused: list[str] = []
        send, resend_in_flight = bus.send, orchestrator.resend_in_flight
        starting = True

        async def refusing_at_start(queue: str, body: dict[str, object], message_id: str) -> None:
            if starting:
                refused.append(message_id)
                raise ConnectionError("the broker is not accepting messages yet")
            await send(queue, body, message_id)

        async def resend_then_recover() -> int:
            nonlocal starting
            try:
                return await resend_in_flight()
            finally:
                starting = False

        bus.send = refusing_at_start  # type: ignore[method-assign]
        orchestrator.resend_in_flight = resend_then_recover  # type: ignore[method-assign]
        await with_roles_until_ended(services, account_id, run_id)
        assert work.message_id in refused
        recorded_once(services, work, account_id, site_id, balance_before)


async def test_a_worker_lost_after_its_record_has_its_follow_ups_sent_by_the_next(
    stack: Settings,
) -> None:
    """A worker records its batch, and that save dispatches the stage's next batches, but
    it fails before it sends them (it might as well have died). Its message comes again;
    the batch is recorded, so it is not processed twice, and the worker that has it sends
    the batches that record dispatched. The orchestrator runs throughout with its watchdog
    at 300 s, so without those sends the run would stall."""
    services = build(stack)
    try:
        services.start_following()
        services.projector.start(poll_interval=0.2)
        account_id, site_id = site_with_keywords(
            services, KEYWORDS, config={**FEW_BATCHES, "stage_1_batch_size": 1}
        )
        balance_before = services.app.balance(account_id)
        worker = services.worker
        send = worker._send
        lost: list[list[str]] = []

        async def lost_once(bus: Any, batches: list[BatchWork]) -> None:
            if not lost:
                lost.append([w.message_id for w in batches])
                raise ConnectionError("the worker is gone before its sends")
            await send(bus, batches)

        worker._send = lost_once  # type: ignore[method-assign]
        roles = BackgroundRoles(services, orchestrator=True, workers=True)
        await roles.start()
        try:
            run_id = start(services, account_id, site_id)
            run = await until_ended(services, account_id, run_id, limit=30)
        finally:
            await roles.stop()
        assert lost
        assert lost[0]  # the lost sends were follow-ups the record had dispatched
        assert run.status.value == "completed", run.error
        completed = [(e.stage, e.batch) for e in named(services, run_id, "BatchCompleted")]
        assert len(completed) == len(set(completed))
        check_exactly_once(services, account_id, site_id, run_id, balance_before)
    finally:
        services.close()


# --- a broker that refuses a send ----------------------------------------------------------


class RefusingOnce:
    """A work bus whose first sends fail, as when the broker is briefly away."""

    def __init__(self, bus: Any, refusals: int) -> None:
        self.bus = bus
        self.refusals = refusals
        self.refused: list[str] = []

    async def send(self, queue: str, body: dict[str, object], message_id: str) -> None:
        if len(self.refused) < self.refusals:
            self.refused.append(message_id)
            raise ConnectionError("the broker is away")
        await self.bus.send(queue, body, message_id)

    async def depth(self, queue: str) -> int:
        return int(await self.bus.depth(queue))


async def run_past_refusals(
    wired: Services,
    roles: BackgroundRoles,
    refusing: RefusingOnce,
    account_id: UUID,
    site_id: UUID,
    balance_before: int,
) -> None:
    """Run to the end (well within the watchdog's time), then check that the refused
    batches were processed, once, like every other."""
    try:
        run_id = start(wired, account_id, site_id)
        run = await until_ended(wired, account_id, run_id, limit=30)
    finally:
        await roles.stop()
    assert len(refusing.refused) == 2
    assert run.status.value == "completed", run.error
    recorded = {f"{run_id}/{e.stage}/{e.batch}" for e in named(wired, run_id, "BatchCompleted")}
    assert set(refusing.refused) <= recorded  # the refused batches were processed
    check_exactly_once(wired, account_id, site_id, run_id, balance_before)


async def test_batches_whose_send_failed_go_again_soon_not_after_the_watchdog(
    wired: Services,
) -> None:
    """The watchdog (300 s by default) is for messages lost after they were sent. Batches the
    orchestrator could not send at all are sent again about a second later."""
    account_id, site_id = site_with_keywords(wired, FOUR_KEYWORDS, config=FEW_BATCHES)
    balance_before = wired.app.balance(account_id)
    assert wired.settings.batch_watchdog >= 300
    # Stage 1 has two batches of two keywords: every message of its first dispatch fails,
    # so no other event comes to move the run meanwhile.
    refusing = RefusingOnce(wired.orchestrator.bus, refusals=2)
    wired.orchestrator.bus = refusing
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    await run_past_refusals(wired, roles, refusing, account_id, site_id, balance_before)


async def test_a_worker_tries_its_follow_up_sends_again_while_the_broker_is_away(
    wired: Services,
) -> None:
    """A worker that records a batch dispatches the stage's next batches and sends them; a
    send refused for a moment is tried again at once, not left for the watchdog."""
    account_id, site_id = site_with_keywords(
        wired, FOUR_KEYWORDS, config={**FEW_BATCHES, "stage_1_batch_size": 1}
    )
    balance_before = wired.app.balance(account_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    refusing = RefusingOnce(wired.work_bus, refusals=2)
    wired.worker.dispatch_through(refusing, wired.settings.batches_in_flight)
    await run_past_refusals(wired, roles, refusing, account_id, site_id, balance_before)
