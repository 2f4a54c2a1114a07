"""The relay: publishes every stored event, in log order, as a CloudEvent.

The event store is the outbox. The relay reads the log after its tracked position,
publishes a batch with confirms, and only then moves its position, so a crash between the
two publishes the batch again (same ``id`` each time) and never skips an event.

Several copies may run: only the one that leads (``Leadership``) publishes, and the others
stand by, asking again every poll, until the leader's process ends and one of them takes
over from the tracked position.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import lru_cache
from uuid import UUID

import orjson

from automation.adapters.sql import Database
from automation.application.event_catalogue import event_data, event_id, iso, published
from automation.application.ports import EventPublisher, Leadership, OutgoingEvent
from consumers.threads import Threads
from projections.runtime import (
    EventSource,
    Notification,
    StalePositionError,
    advance_position,
    position_of,
)

log = logging.getLogger(__name__)

RELAY_POSITION = "relay"
CONTENT_TYPE = "application/cloudevents+json"

OwnerLookup = Callable[[UUID], tuple[UUID | None, UUID | None]]


def cloud_event(note: Notification, owner: tuple[UUID | None, UUID | None]) -> OutgoingEvent:
    event = note.event
    shown = published(event)
    site_id, account_id = owner
    envelope: dict[str, object] = {
        "specversion": "1.0",
        "id": event_id(event.originator_id, event.originator_version),
        "source": "/automation",
        "type": shown.cloud_event_type,
        "subject": str(event.originator_id),
        "time": iso(event.timestamp),
        "datacontenttype": "application/json",
        "data": event_data(event),
        "sequence": str(note.position),
    }
    if site_id is not None:
        envelope["siteid"] = str(site_id)
    if account_id is not None:
        envelope["accountid"] = str(account_id)
    # The distributed-tracing extension: a run's start or resume names the trace of the
    # command behind it (events stored before traces, or with tracing off, carry none).
    for key, value in (getattr(event, "trace", None) or {}).items():
        if key in ("traceparent", "tracestate"):
            envelope[key] = value
    return OutgoingEvent(
        routing_key=shown.routing_key,
        message_id=str(envelope["id"]),
        body=orjson.dumps(envelope),
        content_type=CONTENT_TYPE,
    )


class Relay:
    def __init__(
        self,
        source: EventSource,
        views: Database,
        publisher: EventPublisher,
        owner_of: OwnerLookup,
        leadership: Leadership,
        batch_size: int = 500,
    ) -> None:
        self.leadership = leadership
        self.source = source
        self.views = views
        self.publisher = publisher
        self.owner_of = lru_cache(maxsize=100_000)(owner_of)
        self.batch_size = batch_size
        self.wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = Threads("relay", 2)  # its calls take turns

    def close(self) -> None:
        self._threads.close()

    def wake_threadsafe(self) -> None:
        """Wake the relay from any thread (for example, right after a save)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.wake.set)

    def position(self) -> int:
        with self.views.read() as tx:
            return position_of(tx, RELAY_POSITION)

    def _prepare(self, after: int) -> tuple[list[OutgoingEvent], int]:
        notes = self.source.read(after, self.batch_size)
        events = [cloud_event(n, self.owner_of(n.event.originator_id)) for n in notes]
        return events, (notes[-1].position if notes else after)

    def _advance(self, old: int, new: int) -> None:
        with self.views.write() as tx:
            advance_position(tx, RELAY_POSITION, old, new)

    async def step(self) -> int:
        """Publish the next batch; returns how many events it published (none while
        another copy leads)."""
        if not await self._threads.run(self.leadership.is_leader):
            return 0
        start = await self._threads.run(self.position)
        events, end = await self._threads.run(self._prepare, start)
        if not events:
            return 0
        await self.publisher.publish(events)
        try:
            await self._threads.run(self._advance, start, end)
        except StalePositionError:
            log.warning("another relay moved the position; this batch went out twice")
        return len(events)

    async def run(self, stop: asyncio.Event, poll_interval: float = 1.0) -> None:
        """Publish until ``stop`` is set: at once when woken, else every ``poll_interval``."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                while await self.step():
                    pass
            except Exception:
                log.exception("relay step failed; retrying")
                await asyncio.sleep(1)
                continue
            self.wake.clear()
            waiters = {asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
        await self._threads.run(self.leadership.release)
