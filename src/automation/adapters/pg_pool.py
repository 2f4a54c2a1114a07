"""Checking a pooled PostgreSQL connection before it is handed out, cheaply.

When PostgreSQL terminates a session (a restart, a failover, ``pg_terminate_backend``) the
pool still holds the connection, and the next statement on it fails (``AdminShutdown``).
psycopg_pool can check each connection before handing it out, but its check is a round
trip (about 0.4 ms here) on every checkout. A healthy idle connection receives nothing,
whereas the server writes its goodbye and closes the socket when it ends a session, so the
socket turning readable while idle is the sign. ``select`` tells in microseconds, and only
then is the connection pinged. When one connection turns out dead, its idle siblings
usually are too: they are all swept at once (``ConnectionPool.check``), rather than met
one by one, each behind the pool's growing back-off between failed checks (1 s, 2 s, …).
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

Check = Callable[[Connection[Any]], None]


def _input_waiting(conn: Connection[Any]) -> bool:
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


def check_before_use(pool: ConnectionPool[Any]) -> Check:
    """A ``check`` for ``pool``: raises for a connection the server has ended."""
    sweeping = threading.Lock()

    def check(conn: Connection[Any]) -> None:
        if not _input_waiting(conn):
            return
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if sweeping.acquire(blocking=False):  # one thread sweeps; the others go on
                try:
                    pool.check()
                finally:
                    sweeping.release()
            raise

    return check


def install_check(pool: ConnectionPool[Any]) -> None:
    """Give a pool made elsewhere (the event store's, built by the eventsourcing library
    with no check) this check. psycopg_pool keeps the callback in ``_check``; the
    library's only other choice is its ``POSTGRES_PRE_PING``, the round trip per checkout."""
    pool._check = check_before_use(pool)
