"""The ports the application needs from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
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
    """A unit of work on a queue. ``message_id`` is stable across redeliveries;
    ``redelivered`` says it was handed to a consumer before, which did not acknowledge it
    (it failed, or died)."""

    queue: str
    body: dict[str, object]
    message_id: str
    delivery_count: int = 0
    redelivered: bool = False
    # Sent with the message, beside its body: the W3C trace context it continues.
    headers: dict[str, str] = field(default_factory=dict)


class WorkHandler(Protocol):
    async def __call__(self, message: WorkMessage) -> None:
        """Do the work; return to acknowledge, raise to have it delivered again."""
        ...


class WorkBus(Protocol):
    """Work queues, at least once: a message comes again until a handler returns.

    A message whose handler keeps failing is parked in a dead-letter queue after
    ``max_deliveries`` attempts instead of blocking the queue.
    """

    async def send(
        self,
        queue: str,
        body: dict[str, object],
        message_id: str,
        headers: dict[str, str] | None = None,
    ) -> None: ...

    async def consume(self, queue: str, handler: WorkHandler, prefetch: int) -> None:
        """Start handling the queue's messages in the background."""
        ...

    async def depth(self, queue: str) -> int:
        """How many messages wait in the queue now (not those being handled)."""
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


class Leadership(Protocol):
    """Which one of several copies of a role does its work: the one holding a lock that
    only one process can hold, and that is freed when that process dies."""

    def is_leader(self) -> bool:
        """Whether this process holds the lock, taking it if it is free. Blocking I/O: call
        it from a thread."""
        ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class BatchReceipt:
    """What one batch of a stage did: stored with its outputs, so a redelivered batch
    reuses it instead of calling the AI (and charging) again."""

    processed: int
    created: int
    credits: int
    output_ids: list[str]
    # The calls that reported tokens, and their tokens (models priced by tokens only).
    metered_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class PipelineStore(Protocol):
    """The content each stage reads and writes, one atomic commit per batch."""

    def pending_ids(self, site_id: UUID, stage: int, limit: int) -> list[str]:
        """The next items waiting at a stage, oldest first."""
        ...

    def stage_inputs(self, stage: int, item_ids: list[str]) -> list[dict[str, Any]]: ...

    def receipt(self, run_id: UUID, stage: int, batch: int) -> BatchReceipt | None: ...

    def commit_batch(
        self,
        site_id: UUID,
        run_id: UUID,
        stage: int,
        batch: int,
        item_ids: list[str],
        outputs: list[dict[str, Any]],
        receipt: BatchReceipt,
        at: datetime,
    ) -> BatchReceipt:
        """Store the outputs, move the inputs on, count both, and keep the receipt, in one
        transaction. A batch committed before (a redelivery) keeps its first receipt."""
        ...

    def move_to_review(self, site_id: UUID, at: datetime) -> int:
        """Put content whose images are all rendered at the review gate; how many."""
        ...

    def titles(self, stage: int, item_ids: list[str]) -> list[dict[str, str]]: ...
