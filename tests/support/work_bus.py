"""Both work buses as a fixture, and what their tests ask of them: parked messages, and
waiting for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from automation.adapters.inprocess_bus import InProcessWorkBus
from automation.adapters.rabbitmq import RabbitMQ, RabbitWorkBus
from automation.application.ports import WorkBus

MAX_DELIVERIES = 3


@pytest.fixture
async def bus(
    bus_kind: str, request: pytest.FixtureRequest, rabbit_names: dict[str, str]
) -> AsyncIterator[WorkBus]:
    made: WorkBus
    if bus_kind == "in-process":
        made = InProcessWorkBus(MAX_DELIVERIES)
    else:
        url = request.getfixturevalue("amqp_url")
        made = RabbitWorkBus(RabbitMQ(url), rabbit_names["AUTOMATION_QUEUE_PREFIX"], MAX_DELIVERIES)
    yield made
    await made.close()
    if isinstance(made, RabbitWorkBus):
        await _delete_queues(made)
        await made.rabbit.close()


async def _delete_queues(bus: RabbitWorkBus) -> None:
    channel = await bus.rabbit.channel()
    for name in ("work", "other"):
        for queue in (bus.queue_name(name), bus.dead_letter_queue_name(name)):
            await channel.queue_delete(queue)
    await channel.exchange_delete(bus.prefix + "dead")
    await channel.close()


async def parked(bus: WorkBus, queue: str) -> list[dict[str, Any]]:
    """The bodies in a queue's dead-letter queue, read afresh from the broker."""
    if isinstance(bus, InProcessWorkBus):
        return [m.body for m in bus.dead_letters[queue]]
    assert isinstance(bus, RabbitWorkBus)
    connection = await aio_pika.connect(bus.rabbit.url)
    try:
        channel = await connection.channel()
        dead = await channel.get_queue(bus.dead_letter_queue_name(queue), ensure=False)
        bodies = []
        while (message := await dead.get(no_ack=True, fail=False)) is not None:
            import orjson

            bodies.append(orjson.loads(message.body))
        return bodies
    finally:
        await connection.close()


async def eventually(check: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
