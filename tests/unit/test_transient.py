"""Which failures are the store or the broker being away (tried again, not counted) and
which are the message's own (counted toward the delivery limit)."""

from __future__ import annotations

import errno
import sqlite3

import aiormq.exceptions
import psycopg
import pytest
from eventsourcing.persistence import OperationalError as StoreOperationalError

from automation.adapters.transient import Backoff, is_transient


def raised_from(cause: BaseException, outer: BaseException) -> BaseException:
    try:
        raise outer from cause
    except BaseException as error:  # noqa: BLE001 - built to be inspected
        return error


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.InterfaceError("the connection is closed"),
        raised_from(psycopg.OperationalError("server closed"), StoreOperationalError("x")),
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("disk I/O error"),
        sqlite3.OperationalError("attempt to write a readonly database"),
        OSError(errno.ENOSPC, "No space left on device"),
        ConnectionRefusedError(111, "Connection refused"),
        aiormq.exceptions.ChannelInvalidStateError("closed"),
        raised_from(sqlite3.OperationalError("database or disk is full"), RuntimeError("x")),
    ],
)
def test_the_store_or_the_broker_away_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug"),
        ValueError("bad input"),
        KeyError("missing"),
        sqlite3.OperationalError("no such table: outputs"),
        psycopg.errors.UniqueViolation("duplicate key"),
        StoreOperationalError("Can't do multi-row tracking with single-row tracking table"),
        OSError(errno.ENOENT, "No such file or directory"),
    ],
)
def test_a_failure_of_the_message_itself_is_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_the_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(first=0.1, cap=2.0)
    assert [backoff.delay(n) for n in range(7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2, 2])
    assert backoff.delay(10_000) == 2.0
