"""Leadership: one copy of a role works, the others stand by and take over when it dies.

On PostgreSQL the leader holds a session advisory lock on a connection of its own; the
server frees the lock when that connection ends, whether the process stopped, crashed or
lost the network. On the embedded default the leader holds an exclusive ``flock`` on a
file in the data directory, which the kernel frees when the process ends.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

import psycopg

from automation.adapters.sql import advisory_lock_key

log = logging.getLogger(__name__)


class PostgresLeadership:
    def __init__(self, url: str, schema: str | None, role: str) -> None:
        self.url = url
        self.role = role
        self.key = advisory_lock_key(schema or "public", f"leader of {role}")
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False

    def is_leader(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._held = False
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            if self._held:
                # The lock lasts as long as this session: a live session still holds it.
                self._conn.execute("SELECT 1")
                return True
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            self._held = bool(row and row[0])
            if self._held:
                log.info("this process now leads the %s role", self.role)
            return self._held
        except psycopg.Error as error:
            if self._held:
                log.warning("lost the lead of the %s role: %s", self.role, error)
            self.release()
            return False

    def release(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.close()  # ending the session frees the lock


class FileLeadership:
    def __init__(self, path: Path, role: str) -> None:
        self.path = path
        self.role = role
        self._fd: int | None = None

    def is_leader(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("this process now leads the %s role", self.role)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor frees the lock
