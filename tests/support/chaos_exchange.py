"""Another service's view of the events exchange: a queue of the test's own, bound before the
service starts, and the check that it holds every stored event once per id, in per-run order.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from uuid import UUID

import aio_pika
import orjson
import psycopg

from automation.application.event_catalogue import event_id
from tests.conftest import AMQP_URL, POSTGRES_URL
from tests.support.chaos import Stack


class ExchangeQueue:
    """A durable queue bound to the stack's exchange with ``#``: it keeps every CloudEvent
    published while the test runs, across relay kills and broker restarts."""

    def __init__(self, stack: Stack) -> None:
        self.exchange, self.name = stack.exchange, f"{stack.prefix}acceptance"

    def bind(self) -> None:
        async def bind() -> None:
            connection = await aio_pika.connect(AMQP_URL, timeout=10)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.declare_exchange(
                    self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
                queue = await channel.declare_queue(self.name, durable=True)
                await queue.bind(exchange, routing_key="#")

        asyncio.run(bind())

    def drain(self, wanted: set[str], timeout: float = 60) -> list[dict[str, Any]]:
        """Every message in the queue, in arrival order, once ``wanted`` ids have arrived."""

        async def drain() -> list[dict[str, Any]]:
            connection = await aio_pika.connect(AMQP_URL, timeout=10)
            messages: list[dict[str, Any]] = []
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(self.name)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while not wanted <= {m["id"] for m in messages}:
                    message = await queue.get(fail=False)
                    if message is None:
                        missing = len(wanted - {m["id"] for m in messages})
                        assert loop.time() < deadline, f"{missing} stored events not published"
                        await asyncio.sleep(0.1)
                        continue
                    await message.ack()
                    messages.append(orjson.loads(message.body))
            return messages

        return asyncio.run(drain())

    def delete(self) -> None:
        async def delete() -> None:
            connection = await aio_pika.connect(AMQP_URL, timeout=10)
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(self.name)

        asyncio.run(delete())


def stored_events(stack: Stack) -> list[tuple[UUID, int]]:
    """Every event in the stack's store, as (aggregate, version), in the log's order."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT originator_id, originator_version FROM "{stack.schema}".automation_events '
            "ORDER BY notification_id"
        ).fetchall()
    return [(UUID(str(a)), int(v)) for a, v in rows]


def check_published(stack: Stack, queue: ExchangeQueue) -> dict[str, int]:
    """Every stored event arrived, duplicates are identical, and each aggregate's events
    first arrived in version order. Returns how many messages and duplicates there were."""
    stored = stored_events(stack)
    ids = {event_id(a, v): (a, v) for a, v in stored}
    messages = queue.drain(set(ids))
    first: dict[str, dict[str, Any]] = {}
    for message in messages:
        assert first.setdefault(message["id"], message) == message, "a duplicate differs"
    arrivals: dict[str, list[int]] = defaultdict(list)
    for message_id, message in first.items():
        if message_id in ids:
            aggregate, version = ids[message_id]
            assert message["subject"] == str(aggregate)
            arrivals[message["subject"]].append(version)
    for subject, versions in arrivals.items():
        assert versions == sorted(versions), f"{subject}'s events out of order: {versions}"
    assert set(first) == set(ids), "published events that are not stored"
    return {
        "stored": len(stored),
        "messages": len(messages),
        "duplicates": len(messages) - len(first),
    }
