"""The ports the application needs from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from automation.domain.estimate import PendingWork


class Clock(Protocol):
    """Where the application reads the time, so tests can move it."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class KeywordInput:
    keyword: str
    volume: int | None = None


@dataclass(frozen=True)
class ImportResult:
    created: int
    duplicates: int


class ContentStore(Protocol):
    """The pipeline's content: keywords and everything made from them."""

    def add_keywords(
        self, site_id: UUID, keywords: Sequence[KeywordInput], at: datetime
    ) -> ImportResult:
        """Insert new keywords; case-insensitive duplicates of stored ones are counted."""
        ...

    def pending_work(self, site_id: UUID) -> PendingWork: ...

    def list_items(
        self, kind: str, site_id: UUID, status: str | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, object]]]:
        """One page of a content listing and the count of all that match."""
        ...


@dataclass(frozen=True)
class WorkMessage:
    """A unit of work on a queue. ``message_id`` is stable across redeliveries."""

    queue: str
    body: dict[str, object]
    message_id: str
    delivery_count: int = 0


class WorkHandler(Protocol):
    async def __call__(self, message: WorkMessage) -> None:
        """Do the work; return to acknowledge, raise to have it delivered again."""
        ...


class WorkBus(Protocol):
    """Work queues, at least once: a message comes again until a handler returns.

    A message whose handler keeps failing is parked in a dead-letter queue after
    ``max_deliveries`` attempts instead of blocking the queue.
    """

    async def send(self, queue: str, body: dict[str, object], message_id: str) -> None: ...

    async def consume(self, queue: str, handler: WorkHandler, prefetch: int) -> None:
        """Start handling the queue's messages in the background."""
        ...

    async def stop_consuming(self, grace: float) -> None:
        """Take no new messages; let in-flight handlers finish within ``grace`` seconds,
        and hand back (requeue) whatever is still in flight after that."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class OutgoingEvent:
    """A stored event as published for other services."""

    routing_key: str
    message_id: str
    body: bytes
    content_type: str


class EventPublisher(Protocol):
    async def publish(self, events: list[OutgoingEvent]) -> None:
        """Publish in order; return only when the broker has confirmed every one."""
        ...

    async def close(self) -> None: ...
