"""The orchestrator: moves every running run to its next step, with durable delays.

It follows the event log like a projection. Each run has one row in ``run_steps``: when
its next step is due (a run's own events set it: now after a start, resume or stage
start; ``within_stage_delay`` after a batch; ``between_stage_delay`` after a stage; a
watchdog time after a dispatch, to send a lost message again). The row and the
orchestrator's log position are written in one transaction, so a delay survives a crash:
after a restart the due step simply fires. Firing a step calls ``advance_run``, which
decides from the run's own state, so firing twice is harmless.

A run's stage may have several batches with workers at once (``window``). Workers refill
the window themselves (a batch's record dispatches the next ones in the same save, see
``stage_worker.py``), so a step fires after a recorded batch only when its record
dispatched nothing: a stage with a delay between batches, the end of a stage, the review
gate. A batch already in flight is sent again only when its message may be lost: its
watchdog time has passed since it was last sent, or the run was resumed since (a paused
run's workers skip its queued batches), or it was last sent before this orchestrator
started. That last case is a restart: on the in-process bus every message went with the
old process, and on RabbitMQ a worker that died between its record's save and its sends
took the new batches' messages with it. So on start the orchestrator sends every running
run's batches in flight once, at once, rather than after the watchdog; a batch whose
message did survive is then delivered twice, which its receipt makes harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import datetime
from typing import Any
from uuid import UUID

from automation.adapters.sql import Database
from automation.application.app import AutomationApp
from automation.application.pipeline import MOVED, BatchWork, Dispatch, InFlight
from automation.application.ports import PipelineStore, WorkBus
from automation.domain.run import AutomationRun as Run
from consumers.run_steps import STEPS_DDL, react_all
from consumers.threads import Threads
from projections.run_document import ENDINGS
from projections.runtime import (
    TRACKING_DDL,
    EventSource,
    StalePositionError,
    advance_position,
    position_of,
)

log = logging.getLogger(__name__)

NAME = "orchestrator"
WORK_QUEUE = "stage_work"
RESEND_AFTER_S = 1.0  # after a failed send, the batches go again this much later


class Orchestrator:
    def __init__(
        self,
        app: AutomationApp,
        views: Database,
        source: EventSource,
        store: PipelineStore,
        bus: WorkBus,
        watchdog: float = 300.0,
        poll_interval: float = 0.5,
        window: int = 1,
    ) -> None:
        self.app, self.views, self.source, self.store, self.bus = app, views, source, store, bus
        self.watchdog = watchdog
        self.window = window
        # When this process last sent each batch still in flight, by message id. Lost on
        # a restart, which only means the durable dispatch time is used instead.
        self._sent: dict[str, float] = {}
        # Runs with batches whose send failed, and when to try sending them again.
        self._resend: dict[UUID, float] = {}
        self.poll_interval = poll_interval
        self._threads = Threads("orchestrator", 4)  # its calls take turns
        # When this orchestrator started (set by ``run``): a batch not sent since may be lost.
        self._started_at = -math.inf
        # The orchestrator's log position as this process last read or wrote it; the
        # write that moves it checks it, so a stale copy costs a re-read, never an event.
        self._position: int | None = None
        # When the earliest step not fired by the last ``step`` is due (epoch seconds).
        self._next_due: float | None = None
        self.wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        with views.write() as tx:
            tx.execute(TRACKING_DDL)
            tx.execute(STEPS_DDL)

    def wake_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.wake.set)

    def follow(self, batch_size: int = 500) -> int:
        """Apply the log's new run events to the steps; how many events were read."""
        start = self._position
        if start is None:
            with self.views.read() as tx:
                start = position_of(tx, NAME)
            self._position = start
        notes = self.source.read(start, batch_size)
        if not notes:
            return 0
        try:
            with self.views.write() as tx:
                react_all(tx, [note.event for note in notes], self.watchdog)
                advance_position(tx, NAME, start, notes[-1].position)
        except StalePositionError:
            log.info("another orchestrator applied these events")
            self._position = None
        except BaseException:
            self._position = None  # not known to have moved: read it again
            raise
        else:
            self._position = notes[-1].position
        for note in notes:
            self._forget(note.event)
        return len(notes)

    def due(self, now: datetime, limit: int = 100) -> list[tuple[UUID, int]]:
        """The steps due at ``now``, the earliest first (at most ``limit``); also notes
        when the earliest of the others is due, from the same read."""
        with self.views.read() as tx:
            rows = tx.fetchall(
                "SELECT run_id, version, due_at FROM run_steps WHERE due_at IS NOT NULL "
                "ORDER BY due_at LIMIT ?",
                (limit + 1,),
            )
        cutoff = now.timestamp()
        due = [(UUID(str(r[0])), int(r[1])) for r in rows[:limit] if r[2] <= cutoff]
        later = [float(r[2]) for r in rows if r[2] > cutoff]
        # With ``limit`` due and more behind them, the next step is due at once.
        self._next_due = cutoff if len(due) == limit else min(later, default=None)
        return due

    def _settle(self, run_id: UUID, version: int, due_at: float | None) -> None:
        """Park the step (or re-arm its watchdog), unless an event moved it meanwhile."""
        with self.views.write() as tx:
            tx.execute(
                "UPDATE run_steps SET due_at = ?, version = version + 1 "
                "WHERE run_id = ? AND version = ?",
                (due_at, str(run_id), version),
            )

    async def fire(self, run_id: UUID, version: int | None) -> None:
        """Take the run's next step. ``version`` is its step row's, to settle the row
        after; None for a retry of failed sends, which leaves the row as it is."""
        outcome = await self._threads.run(self.app.advance_run, run_id, self.store, self.window)
        if outcome == MOVED or (isinstance(outcome, Dispatch) and outcome.new):
            # The step saved events (a stage moved, or batches were dispatched); following
            # them sets the next step, and the next ``step`` follows before it fires, so
            # settling this one first would only be overwritten.
            settle = False
        else:
            settle = True
        rearm: float | None = None
        if isinstance(outcome, Dispatch):
            now = self.app.clock.now().timestamp()
            resumed = outcome.resumed_at.timestamp() if outcome.resumed_at else None
            again = [f.work for f in outcome.in_flight if self._lost(f, now, resumed)]
            await self._send(run_id, [*again, *outcome.new], now, outcome.trace)  # oldest first
            oldest = min((self._last_sent(f) for f in outcome.in_flight), default=now)
            rearm = oldest + self.watchdog
        if settle and version is not None:
            await self._threads.run(self._settle, run_id, version, rearm)
            self._due_by(rearm)
        else:
            self._due_by(self.app.clock.now().timestamp())  # follow its new events at once

    async def _send(
        self, run_id: UUID, batches: list[BatchWork], now: float, trace: dict[str, str] | None
    ) -> None:
        """Send a run's batches side by side (each send waits for the broker's confirm),
        with the run's trace context. A batch whose send failed counts as lost, and the run
        is tried again about a second later; the first failure is raised."""
        traced = {"headers": trace} if trace else {}  # none: the bus is called as before
        results = await asyncio.gather(
            *(self.bus.send(WORK_QUEUE, w.as_body(), w.message_id, **traced) for w in batches),
            return_exceptions=True,
        )
        for work, result in zip(batches, results, strict=True):
            self._sent[work.message_id] = -math.inf if isinstance(result, BaseException) else now
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self._resend[run_id] = now + RESEND_AFTER_S
            self._due_by(now + RESEND_AFTER_S)
            raise failures[0]

    def _due_by(self, at: float | None) -> None:
        if at is not None:
            self._next_due = at if self._next_due is None else min(self._next_due, at)

    def _last_sent(self, flight: InFlight) -> float:
        return self._sent.get(flight.work.message_id, flight.dispatched_at.timestamp())

    def _lost(self, flight: InFlight, now: float, resumed: float | None) -> bool:
        """Whether a batch in flight should be sent again: nothing came back within the
        watchdog time since it was last sent, the run was resumed after that, or it was
        last sent before this orchestrator started."""
        sent = self._last_sent(flight)
        return (
            now - sent >= self.watchdog
            or (resumed is not None and resumed > sent)
            or sent < self._started_at
        )

    def _running_runs(self) -> list[UUID]:
        with self.views.read() as tx:
            rows = tx.fetchall("SELECT run_id FROM run_steps WHERE due_at IS NOT NULL")
        return [UUID(str(r[0])) for r in rows]

    async def resend_in_flight(self) -> int:
        """Send every running run's batches in flight that this orchestrator has not sent
        (on start: all of them); how many were sent. A run whose sends fail is tried again
        about a second later, as in ``fire``."""
        sent = 0
        for run_id in await self._threads.run(self._running_runs):
            flights = await self._threads.run(self.app.batches_in_flight, run_id)
            now = self.app.clock.now().timestamp()
            lost = [f.work for f in flights if self._lost(f, now, None)]
            with contextlib.suppress(Exception):  # retried soon: see ``_send``
                await self._send(run_id, lost, now, None)
            sent += sum(1 for w in lost if self._sent[w.message_id] == now)
        if sent:
            log.info("sent %d batch(es) in flight again after a start", sent)
        return sent

    def _forget(self, event: Any) -> None:
        kind = type(event)
        if kind is Run.BatchCompleted:
            self._sent.pop(f"{event.originator_id}/{event.stage}/{event.batch}", None)
        elif kind in ENDINGS:
            prefix = f"{event.originator_id}/"
            for message_id in [m for m in self._sent if m.startswith(prefix)]:
                del self._sent[message_id]

    async def follow_all(self, batch_size: int = 500) -> int:
        """Follow the log to its end; how many events were followed."""
        done = 0
        while True:
            count = await self._threads.run(self.follow, batch_size)
            done += count
            if count < batch_size:  # a short read reached the end of the log
                return done

    async def step(self) -> int:
        """Follow the log, then fire every due step; how much was done."""
        done = await self.follow_all()
        now = self.app.clock.now()
        due: list[tuple[UUID, int | None]] = list(await self._threads.run(self.due, now))
        # Runs whose work messages could not be sent (the broker was away): try again
        # soon, rather than waiting for the batches' watchdog.
        retries = [r for r, at in self._resend.items() if at <= now.timestamp()]
        for run_id in retries:
            del self._resend[run_id]
        due += [(r, None) for r in retries if all(r != d for d, _ in due)]
        for run_id, version in due:
            try:
                await self.fire(run_id, version)
            except Exception:
                # Unless events it saved moved the step, it is still due and fires again
                # on the next loop (a wake, or the poll); unsent batches go again soon.
                log.exception("step of run %s failed; it fires again", run_id)
            done += 1
        return done

    def close(self) -> None:
        self._threads.close()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._started_at = self.app.clock.now().timestamp()
        try:
            await self.follow_all()  # every running run has its row first
            await self.resend_in_flight()
        except Exception:
            log.exception("sending the batches in flight again failed; the watchdog will")
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.step()
                # Known from the step's own read of the due steps and what it fired.
                next_due = self._next_due
                now = self.app.clock.now().timestamp()
                wait = None if next_due is None else max(0.0, next_due - now)
            except Exception:
                log.exception("orchestrator step failed; retrying")
                wait = 1.0
            timeout = self.poll_interval if wait is None else min(wait, self.poll_interval)
            if timeout <= 0:
                continue
            waiters = {asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
