"""The orchestrator: moves every running run to its next step, with durable delays.

It follows the event log like a projection. Each run has one row in ``run_steps``: when
its next step is due (a run's own events set it: now after a start, resume or stage
start; ``within_stage_delay`` after a batch; ``between_stage_delay`` after a stage; a
watchdog time after a dispatch, to send a lost message again). The row and the
orchestrator's log position are written in one transaction, so a delay survives a crash:
after a restart the due step simply fires. Firing a step calls ``advance_run``, which
decides from the run's own state, so firing twice is harmless.

A run's stage may have several batches with workers at once (``window``). The step after
each recorded batch dispatches the next ones; a batch already in flight is sent again
only when its message may be lost: its watchdog time has passed since it was last sent,
or the run was resumed since (a paused run's workers skip its queued batches).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread

from automation.adapters.sql import Database, Tx
from automation.application.app import AutomationApp
from automation.application.pipeline import IDLE, Dispatch, InFlight
from automation.application.ports import PipelineStore, WorkBus
from projections.run_document import is_run_event
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
STEPS_DDL = (
    "CREATE TABLE IF NOT EXISTS run_steps ("
    "run_id TEXT PRIMARY KEY, due_at DOUBLE PRECISION, version BIGINT NOT NULL, "
    "within_delay DOUBLE PRECISION NOT NULL, between_delay DOUBLE PRECISION NOT NULL)"
)
TERMINAL = frozenset({"RunCompleted", "RunFailed", "RunCancelled"})


def _set_due(tx: Tx, run_id: str, due_at: float | None) -> None:
    tx.execute(
        "UPDATE run_steps SET due_at = ?, version = version + 1 WHERE run_id = ?", (due_at, run_id)
    )


def react(tx: Tx, event: Any, watchdog: float) -> None:
    """How one run event moves its next step."""
    if not is_run_event(event):
        return
    name = type(event).__name__
    run_id = str(event.originator_id)
    at = getattr(event, "at", None) or event.timestamp
    when = at.timestamp()
    if name == "RunStarted":
        tx.execute(
            "INSERT INTO run_steps (run_id, due_at, version, within_delay, between_delay) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (run_id) DO NOTHING",
            (
                run_id,
                when,
                float(event.config.get("within_stage_delay", 0)),
                float(event.config.get("between_stage_delay", 0)),
            ),
        )
    elif name in ("StageStarted", "RunResumed"):
        _set_due(tx, run_id, when)
    elif name == "BatchDispatched":
        _set_due(tx, run_id, when + watchdog)
    elif name == "BatchCompleted":
        tx.execute(
            "UPDATE run_steps SET due_at = ? + within_delay, version = version + 1 "
            "WHERE run_id = ?",
            (when, run_id),
        )
    elif name == "StageCompleted":
        tx.execute(
            "UPDATE run_steps SET due_at = ? + between_delay, version = version + 1 "
            "WHERE run_id = ?",
            (when, run_id),
        )
    elif name == "RunPaused":
        _set_due(tx, run_id, None)
    elif name in TERMINAL:
        tx.execute("DELETE FROM run_steps WHERE run_id = ?", (run_id,))


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
        self.poll_interval = poll_interval
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
        with self.views.read() as tx:
            start = position_of(tx, NAME)
        notes = self.source.read(start, batch_size)
        if not notes:
            return 0
        try:
            with self.views.write() as tx:
                for note in notes:
                    react(tx, note.event, self.watchdog)
                    self._forget(note.event)
                advance_position(tx, NAME, start, notes[-1].position)
        except StalePositionError:
            log.info("another orchestrator applied these events")
        return len(notes)

    def due(self, now: datetime, limit: int = 100) -> list[tuple[UUID, int]]:
        with self.views.read() as tx:
            rows = tx.fetchall(
                "SELECT run_id, version FROM run_steps WHERE due_at IS NOT NULL AND due_at <= ? "
                "ORDER BY due_at LIMIT ?",
                (now.timestamp(), limit),
            )
        return [(UUID(str(r[0])), int(r[1])) for r in rows]

    def next_due_in(self, now: datetime) -> float | None:
        with self.views.read() as tx:
            row = tx.fetchone("SELECT MIN(due_at) FROM run_steps WHERE due_at IS NOT NULL")
        return None if row is None or row[0] is None else max(0.0, row[0] - now.timestamp())

    def _settle(self, run_id: UUID, version: int, due_at: float | None) -> None:
        """Park the step (or re-arm its watchdog), unless an event moved it meanwhile."""
        with self.views.write() as tx:
            tx.execute(
                "UPDATE run_steps SET due_at = ?, version = version + 1 "
                "WHERE run_id = ? AND version = ?",
                (due_at, str(run_id), version),
            )

    async def fire(self, run_id: UUID, version: int) -> None:
        outcome = await anyio.to_thread.run_sync(
            self.app.advance_run, run_id, self.store, self.window
        )
        rearm: float | None = None
        if isinstance(outcome, Dispatch):
            now = self.app.clock.now().timestamp()
            resumed = outcome.resumed_at.timestamp() if outcome.resumed_at else None
            again = [f.work for f in outcome.in_flight if self._lost(f, now, resumed)]
            sending = [*again, *outcome.new]  # the oldest first
            # Sent side by side: each send waits for the broker's confirm.
            await asyncio.gather(
                *(self.bus.send(WORK_QUEUE, w.as_body(), w.message_id) for w in sending)
            )
            self._sent.update((w.message_id, now) for w in sending)
            oldest = min((self._last_sent(f) for f in outcome.in_flight), default=now)
            rearm = oldest + self.watchdog
        elif outcome == IDLE:
            rearm = None
        await anyio.to_thread.run_sync(self._settle, run_id, version, rearm)

    def _last_sent(self, flight: InFlight) -> float:
        return self._sent.get(flight.work.message_id, flight.dispatched_at.timestamp())

    def _lost(self, flight: InFlight, now: float, resumed: float | None) -> bool:
        """Whether a batch in flight should be sent again: nothing came back within the
        watchdog time since it was last sent, or the run was resumed after that."""
        sent = self._last_sent(flight)
        return now - sent >= self.watchdog or (resumed is not None and resumed > sent)

    def _forget(self, event: Any) -> None:
        name = type(event).__name__
        if name == "BatchCompleted":
            self._sent.pop(f"{event.originator_id}/{event.stage}/{event.batch}", None)
        elif name in TERMINAL:
            prefix = f"{event.originator_id}/"
            for message_id in [m for m in self._sent if m.startswith(prefix)]:
                del self._sent[message_id]

    async def step(self) -> int:
        """Follow the log, then fire every due step; how much was done."""
        done = 0
        while count := await anyio.to_thread.run_sync(self.follow):
            done += count
        for run_id, version in await anyio.to_thread.run_sync(self.due, self.app.clock.now()):
            try:
                await self.fire(run_id, version)
            except Exception:
                log.exception("step of run %s failed; it fires again", run_id)
            done += 1
        return done

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.step()
                wait = await anyio.to_thread.run_sync(self.next_due_in, self.app.clock.now())
            except Exception:
                log.exception("orchestrator step failed; retrying")
                wait = 1.0
            timeout = self.poll_interval if wait is None else min(wait, self.poll_interval)
            waiters = {asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
