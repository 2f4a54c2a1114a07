"""Which failures are the store or the broker being away, and how long to wait after one.

A work message whose handler fails because PostgreSQL dropped its connections, the disk is
full or RabbitMQ is restarting is not at fault: the same message succeeds once the service
is back. The buses therefore keep such a message and try it again with a growing delay,
without counting the attempt toward ``AUTOMATION_MAX_DELIVERIES`` (which is meant for
messages that can never be handled). Everything else is a failure of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

import aiormq.exceptions
import psycopg

from automation.application.ports import WorkHandler, WorkMessage

log = logging.getLogger(__name__)

# SQLite says "OperationalError" for a missing table or a syntax error too; only these
# messages mean the file could not be written or read for now.
_SQLITE_TRANSIENT = (
    "disk i/o error",
    "database or disk is full",
    "readonly",
    "database is locked",
    "unable to open database file",
)
_OS_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
_AMQP_TRANSIENT = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
)


def _is_transient_one(error: BaseException) -> bool:
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True  # a dropped connection, a server shutting down, a pool timeout
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(text in message for text in _SQLITE_TRANSIENT)
    if isinstance(error, _AMQP_TRANSIENT):
        return True
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    return isinstance(error, OSError) and error.errno in _OS_TRANSIENT


def is_transient(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from or while handling, says that the
    store or the broker is away for now (rather than that the message is bad)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_transient_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``first`` seconds, doubling, never more than ``cap``."""

    first: float = 0.1
    cap: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (0 for the first)."""
        return float(min(self.cap, self.first * 2 ** min(attempt, 32)))


class Outcome(enum.Enum):
    HANDLED = "handled"
    FAILED = "failed"  # the message's own failure: counts toward the delivery limit
    HANDED_BACK = "handed back"  # given up while waiting (stopping, or its channel closed)


async def pause(seconds: float, stopping: asyncio.Event) -> None:
    """Wait ``seconds``, or less if the consumer is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def handle_patiently(
    handler: WorkHandler,
    message: WorkMessage,
    backoff: Backoff,
    stopping: asyncio.Event,
    still_held: Callable[[], bool] = lambda: True,
    on_transient: Callable[[], None] = lambda: None,
) -> tuple[Outcome, Exception | None]:
    """Run ``handler``; while it fails for a transient reason, keep the message and run it
    again after a growing delay, marked redelivered, without counting the attempt. The
    batch's receipt and record make another attempt harmless (and a no-op if the first
    one got as far as its commit)."""
    failures = 0
    while True:
        try:
            await handler(message)
        except Exception as error:  # noqa: BLE001 - the bus decides what a failure means
            if not is_transient(error):
                return Outcome.FAILED, error
            on_transient()
            delay = backoff.delay(failures)
            log.log(
                logging.WARNING if failures % 10 == 0 else logging.DEBUG,
                "message %s on %s failed for a transient reason (%s: %s); trying it again "
                "in %.1f s, not counting the attempt",
                message.message_id,
                message.queue,
                type(error).__name__,
                error,
                delay,
            )
            failures += 1
            await pause(delay, stopping)
            if stopping.is_set() or not still_held():
                return Outcome.HANDED_BACK, error
            message = replace(message, redelivered=True)
        else:
            if failures:
                log.info(
                    "message %s handled after %d transient failures", message.message_id, failures
                )
            return Outcome.HANDLED, None
