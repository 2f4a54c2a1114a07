"""Settling work messages on channels that may have closed, and redriving parked ones."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import aio_pika
import aio_pika.exceptions
from aio_pika.abc import AbstractIncomingMessage

if TYPE_CHECKING:
    from automation.adapters.rabbitmq import RabbitMQ

log = logging.getLogger(__name__)


def channel_open(incoming: AbstractIncomingMessage) -> bool:
    """Whether the channel the message came on is still open (so it is still ours)."""
    try:
        return not incoming.channel.is_closed
    except aio_pika.exceptions.ChannelInvalidStateError:
        return False


async def settle(settling: Awaitable[object]) -> None:
    """Ack, nack or reject. On a channel that closed meanwhile the broker has already handed
    the message back, so there is nothing left to settle."""
    try:
        await settling
    except (aio_pika.exceptions.ChannelInvalidStateError, aio_pika.exceptions.AMQPConnectionError):
        log.info("the channel closed before a message was settled; the broker delivers it again")


async def redrive(rabbit: RabbitMQ, dead_queue: str, queue: str) -> int:
    """Move what ``dead_queue`` holds now to ``queue``: each as a fresh message (so its
    attempts are counted afresh), acknowledged on the dead-letter queue only once the broker
    has confirmed its copy. A crash in between leaves a twin, which the batch's receipt
    makes harmless. One pass over what was there at the start, so a message parked again
    meanwhile waits for the next redrive."""
    moved = 0
    channel = await rabbit.channel()
    try:
        parked = await channel.declare_queue(dead_queue, durable=True)
        waiting = parked.declaration_result.message_count or 0
        for _ in range(waiting):
            incoming = await parked.get(no_ack=False, fail=False)
            if incoming is None:
                break
            await channel.default_exchange.publish(
                aio_pika.Message(
                    incoming.body,
                    content_type=incoming.content_type,
                    message_id=incoming.message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queue,
            )
            await incoming.ack()
            moved += 1
    finally:
        await channel.close()
    return moved
