"""The embedded default's work bus: asyncio queues with the same at-least-once rules as
RabbitMQ (a failed message comes again; after ``max_deliveries`` it is parked)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import replace

from automation.application.ports import WorkHandler, WorkMessage

log = logging.getLogger(__name__)


class InProcessWorkBus:
    def __init__(self, max_deliveries: int = 5) -> None:
        self.max_deliveries = max_deliveries
        self._queues: dict[str, asyncio.Queue[WorkMessage]] = defaultdict(asyncio.Queue)
        self.dead_letters: dict[str, list[WorkMessage]] = defaultdict(list)
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def send(self, queue: str, body: dict[str, object], message_id: str) -> None:
        self._queues[queue].put_nowait(WorkMessage(queue, body, message_id))

    async def consume(self, queue: str, handler: WorkHandler, prefetch: int) -> None:
        for _ in range(max(1, prefetch)):
            self._workers.append(asyncio.create_task(self._work(queue, handler)))

    async def _work(self, queue: str, handler: WorkHandler) -> None:
        pending = self._queues[queue]
        while not self._stopping:
            message = await pending.get()
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            try:
                await handler(message)
            except asyncio.CancelledError:
                # Handed back, as RabbitMQ would on a lost channel.
                pending.put_nowait(replace(message, redelivered=True))
                raise
            except Exception:
                attempts = message.delivery_count + 1
                if attempts >= self.max_deliveries:
                    log.exception(
                        "parking message %s on %s after %d attempts",
                        message.message_id,
                        queue,
                        attempts,
                    )
                    self.dead_letters[queue].append(message)
                else:
                    log.warning(
                        "message %s on %s failed (attempt %d); handing it back",
                        message.message_id,
                        queue,
                        attempts,
                        exc_info=True,
                    )
                    pending.put_nowait(replace(message, delivery_count=attempts, redelivered=True))
            finally:
                self._busy.discard(task)

    async def stop_consuming(self, grace: float) -> None:
        self._stopping = True
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
        self._stopping = False

    async def close(self) -> None:
        await self.stop_consuming(grace=0)
