"""The embedded default's work bus: asyncio queues with the same at-least-once rules as
RabbitMQ: a message that fails because the store is away is kept and tried again after a
growing delay, not counted (adapters/transient.py); any other failure comes again after a
delay, and after ``max_deliveries`` such attempts the message is parked. Parked messages
go back to their queue once a message is handled after a transient fault."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import replace

from automation.adapters.transient import Backoff, Outcome, handle_patiently, pause
from automation.application.ports import WorkHandler, WorkMessage

log = logging.getLogger(__name__)


class InProcessWorkBus:
    def __init__(self, max_deliveries: int = 5, backoff: Backoff | None = None) -> None:
        self.max_deliveries = max_deliveries
        self.backoff = backoff or Backoff()
        self._queues: dict[str, asyncio.Queue[WorkMessage]] = defaultdict(asyncio.Queue)
        self.dead_letters: dict[str, list[WorkMessage]] = defaultdict(list)
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._troubled: set[str] = set()  # queues that met a transient fault since a redrive

    async def send(
        self,
        queue: str,
        body: dict[str, object],
        message_id: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._queues[queue].put_nowait(WorkMessage(queue, body, message_id, headers=headers or {}))

    async def depth(self, queue: str) -> int:
        return self._queues[queue].qsize()

    async def consume(self, queue: str, handler: WorkHandler, prefetch: int) -> None:
        for _ in range(max(1, prefetch)):
            self._workers.append(asyncio.create_task(self._work(queue, handler)))

    async def _work(self, queue: str, handler: WorkHandler) -> None:
        pending = self._queues[queue]
        while not self._stopping.is_set():
            message = await pending.get()
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            try:
                await self._handle(pending, message, handler)
            except asyncio.CancelledError:
                # Handed back, as RabbitMQ would on a lost channel.
                pending.put_nowait(replace(message, redelivered=True))
                raise
            finally:
                self._busy.discard(task)

    async def _handle(
        self, pending: asyncio.Queue[WorkMessage], message: WorkMessage, handler: WorkHandler
    ) -> None:
        outcome, error = await handle_patiently(
            handler,
            message,
            self.backoff,
            self._stopping,
            on_transient=lambda: self._troubled.add(message.queue),
        )
        if outcome is Outcome.HANDLED:
            if message.queue in self._troubled:
                self._troubled.discard(message.queue)
                self.redrive(message.queue)
            return
        if outcome is Outcome.HANDED_BACK:
            pending.put_nowait(replace(message, redelivered=True))
            return
        attempts = message.delivery_count + 1
        if attempts >= self.max_deliveries:
            log.error(
                "parking message %s on %s after %d attempts",
                message.message_id,
                message.queue,
                attempts,
                exc_info=error,
            )
            self.dead_letters[message.queue].append(message)
            return
        log.warning(
            "message %s on %s failed (attempt %d); handing it back",
            message.message_id,
            message.queue,
            attempts,
            exc_info=error,
        )
        await pause(self.backoff.delay(message.delivery_count), self._stopping)
        pending.put_nowait(replace(message, delivery_count=attempts, redelivered=True))

    def redrive(self, queue: str) -> int:
        """Put the queue's parked messages back on it, their attempts counted afresh."""
        parked, self.dead_letters[queue] = self.dead_letters[queue], []
        for message in parked:
            self._queues[queue].put_nowait(replace(message, delivery_count=0, redelivered=True))
        if parked:
            log.warning("redriving %d parked message(s) on %s", len(parked), queue)
        return len(parked)

    async def stop_consuming(self, grace: float) -> None:
        self._stopping.set()
        idle = [w for w in self._workers if w not in self._busy]
        for worker in idle:
            worker.cancel()
        busy = [w for w in self._workers if w in self._busy]
        if busy:
            # A busy worker finishes its message, then is stopped before it takes another.
            await asyncio.wait(busy, timeout=grace)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()
        self._stopping.clear()

    async def close(self) -> None:
        await self.stop_consuming(grace=0)
