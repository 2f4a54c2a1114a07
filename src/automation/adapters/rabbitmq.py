"""RabbitMQ through aio-pika: the events exchange for other services, and work queues.

Every channel publishes with confirms. Work queues are durable quorum queues whose
messages go to a dead-letter queue after ``max_deliveries`` failed attempts, so a message
that keeps failing is parked (with a log line and a metric) instead of blocking its queue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from prometheus_client import Counter

from automation.adapters.amqp_parking import channel_open, redrive, settle
from automation.adapters.transient import Backoff, Outcome, handle_patiently, pause
from automation.application.ports import OutgoingEvent, WorkHandler, WorkMessage

log = logging.getLogger(__name__)

DEAD_LETTERED = Counter(
    "automation_messages_dead_lettered_total",
    "Work messages parked in a dead-letter queue after their last failed attempt",
    ["queue"],
)
REDELIVERED = Counter(
    "automation_messages_retried_total", "Work messages handed back after a failure", ["queue"]
)


def _trace_headers(headers: Any) -> dict[str, str]:
    """The W3C trace context among a message's headers (the broker adds its own)."""
    return {
        key: value.decode() if isinstance(value, bytes) else str(value)
        for key, value in (headers or {}).items()
        if key in ("traceparent", "tracestate")
    }


class RabbitMQ:
    """One robust connection for the process (it reconnects and restores its topology)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()

    async def connection(self) -> AbstractRobustConnection:
        async with self._lock:
            if self._connection is None:
                self._connection = await aio_pika.connect_robust(self.url, timeout=10)
        return self._connection

    async def channel(self) -> AbstractChannel:
        return await (await self.connection()).channel(publisher_confirms=True)

    def is_connected(self) -> bool:
        connection = self._connection
        return (
            connection is not None
            and not connection.is_closed
            and bool(getattr(connection, "connected", None) and connection.connected.is_set())
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


class RabbitEventPublisher:
    """Publishes stored events to the durable topic exchange, as CloudEvents."""

    def __init__(self, rabbit: RabbitMQ, exchange: str = "automation.events") -> None:
        self.rabbit = rabbit
        self.exchange_name = exchange
        self._exchange: AbstractExchange | None = None

    async def _declared(self) -> AbstractExchange:
        if self._exchange is None:
            channel = await self.rabbit.channel()
            self._exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def publish(self, events: list[OutgoingEvent]) -> None:
        exchange = await self._declared()
        # One channel sends frames in the order they are written, so publishing the
        # batch concurrently keeps their order while waiting for all confirms at once.
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        event.body,
                        content_type=event.content_type,
                        message_id=event.message_id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=event.routing_key,
                )
                for event in events
            )
        )

    async def close(self) -> None:
        self._exchange = None


class RabbitWorkBus:
    def __init__(
        self,
        rabbit: RabbitMQ,
        prefix: str = "automation.",
        max_deliveries: int = 5,
        backoff: Backoff | None = None,
    ):
        self.rabbit = rabbit
        self.prefix = prefix
        self.max_deliveries = max_deliveries
        self._send_channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self.backoff = backoff or Backoff()
        self._consumers: list[tuple[AbstractChannel, str, tuple[AbstractQueue, str]]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._troubled: set[str] = set()  # queues that met a transient fault since a redrive
        self._redrives: set[asyncio.Task[int]] = set()

    def queue_name(self, queue: str) -> str:
        return self.prefix + queue

    def dead_letter_queue_name(self, queue: str) -> str:
        return self.prefix + queue + ".dead"

    async def _declare(self, channel: AbstractChannel, queue: str) -> AbstractQueue:
        name = self.queue_name(queue)
        dead = await channel.declare_exchange(
            self.prefix + "dead", aio_pika.ExchangeType.DIRECT, durable=True
        )
        parked = await channel.declare_queue(self.dead_letter_queue_name(queue), durable=True)
        await parked.bind(dead, routing_key=name)
        return await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.prefix + "dead",
                "x-dead-letter-routing-key": name,
                # A safety net for consumers that die mid-message again and again.
                "x-delivery-limit": self.max_deliveries,
            },
        )

    async def send(
        self,
        queue: str,
        body: dict[str, object],
        message_id: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if self._send_channel is None or self._send_channel.is_closed:
            self._send_channel = await self.rabbit.channel()
        if queue not in self._declared:
            await self._declare(self._send_channel, queue)
            self._declared.add(queue)
        await self._send_channel.default_exchange.publish(
            aio_pika.Message(
                orjson.dumps(body),
                content_type="application/json",
                message_id=message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=dict(headers) if headers else None,
            ),
            routing_key=self.queue_name(queue),
        )

    async def depth(self, queue: str) -> int:
        """Asked of the broker afresh: a passive declare answers the queue's ready count."""
        channel = await self.rabbit.channel()
        try:
            declared = await channel.declare_queue(self.queue_name(queue), passive=True)
            return int(declared.declaration_result.message_count or 0)
        finally:
            await channel.close()

    async def consume(self, queue: str, handler: WorkHandler, prefetch: int) -> None:
        channel = await self.rabbit.channel()
        await channel.set_qos(prefetch_count=prefetch)
        declared = await self._declare(channel, queue)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._inflight.add(task)
            try:
                await self._handle(queue, incoming, handler)
            finally:
                self._inflight.discard(task)

        tag = await declared.consume(on_message)
        if not self._consumers:
            (await self.rabbit.connection()).reconnect_callbacks.add(self._on_reconnect)
        self._consumers.append((channel, queue, (declared, tag)))
        self._redrive_soon(queue)  # what an earlier process left parked

    async def _handle(
        self, queue: str, incoming: AbstractIncomingMessage, handler: WorkHandler
    ) -> None:
        count = int(str((incoming.headers or {}).get("x-delivery-count", 0) or 0))
        try:
            body = orjson.loads(incoming.body)
            if not isinstance(body, dict):
                raise ValueError("a work message must be a JSON object")
        except ValueError:
            log.error("parking unreadable message %s on %s", incoming.message_id, queue)
            DEAD_LETTERED.labels(queue).inc()
            await settle(incoming.reject(requeue=False))
            return
        message = WorkMessage(
            queue,
            body,
            incoming.message_id or "",
            count,
            bool(incoming.redelivered),
            _trace_headers(incoming.headers),
        )
        try:
            outcome, error = await handle_patiently(
                handler,
                message,
                self.backoff,
                self._stopping,
                still_held=lambda: channel_open(incoming),
                on_transient=lambda: self._troubled.add(queue),
            )
        except asyncio.CancelledError:
            await settle(incoming.nack(requeue=True))
            raise
        if outcome is Outcome.HANDLED:
            await settle(incoming.ack())
            if queue in self._troubled:
                self._troubled.discard(queue)
                self._redrive_soon(queue)
        elif outcome is Outcome.HANDED_BACK:
            await settle(incoming.nack(requeue=True))  # a closed channel has handed it back
        elif count + 1 >= self.max_deliveries:
            log.error(
                "parking message %s on %s after %d attempts",
                message.message_id,
                queue,
                count + 1,
                exc_info=error,
            )
            DEAD_LETTERED.labels(queue).inc()
            await settle(incoming.reject(requeue=False))
        else:
            log.warning(
                "message %s on %s failed (attempt %d); handing it back",
                message.message_id,
                queue,
                count + 1,
                exc_info=error,
            )
            REDELIVERED.labels(queue).inc()
            # A delayed nack: the broker counts the attempt, the delay spaces them out.
            await pause(self.backoff.delay(count), self._stopping)
            await settle(incoming.nack(requeue=True))

    def _redrive_soon(self, queue: str) -> None:
        task = asyncio.create_task(self.redrive(queue))
        self._redrives.add(task)
        task.add_done_callback(self._redrives.discard)

    async def redrive(self, queue: str) -> int:
        """Move the messages parked in the queue's dead-letter queue back to the queue;
        how many were moved."""
        try:
            moved = await redrive(
                self.rabbit, self.dead_letter_queue_name(queue), self.queue_name(queue)
            )
        except Exception:  # the next transient fault's recovery tries again
            log.warning("redriving parked messages of %s failed", queue, exc_info=True)
            self._troubled.add(queue)
            return 0
        if moved:
            log.warning("redrove %d parked message(s) to %s", moved, self.queue_name(queue))
        return moved

    def _on_reconnect(self, *_: Any) -> None:
        # Messages may have been parked by the broker's own limit while it was away.
        self._troubled.update(queue for _, queue, _ in self._consumers)

    async def stop_consuming(self, grace: float) -> None:
        self._stopping.set()  # a message waiting to be tried again is handed back now
        for _, _, (declared, tag) in self._consumers:
            await declared.cancel(tag)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()  # its handler hands the message back (nack, requeue)
            if pending:
                await asyncio.wait(pending, timeout=5)
        for channel, _, _ in self._consumers:
            await channel.close()
        self._consumers.clear()
        self._stopping.clear()

    async def close(self) -> None:
        for task in list(self._redrives):
            task.cancel()
        await self.stop_consuming(grace=0)
        if self._send_channel is not None and not self._send_channel.is_closed:
            await self._send_channel.close()
