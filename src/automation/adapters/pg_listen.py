"""Wake-ups from PostgreSQL: LISTEN on the channel the event recorder NOTIFYs on each save,
and on the one projectors NOTIFY the position they commit on.

A lost notification or a dropped connection only delays a follower until its next poll:
followers also poll on a timer, commands waiting for the read models re-read the positions
now and then, and this thread reconnects by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from automation.adapters.sql import advisory_lock_key

log = logging.getLogger(__name__)


def tracking_channel(schema: str | None) -> str:
    """The channel projectors NOTIFY their committed position on. Channels are
    database-wide, so the name is derived from the schema: a position of another
    deployment in the same database must never release this one's waiters."""
    key = advisory_lock_key(schema or "public", "projection_tracking")
    return f"automation_views_{key & 0xFFFFFFFFFFFFFFFF:016x}"


class PgWakeups:
    def __init__(self, url: str, channel: str, progress_channel: str | None = None) -> None:
        self.url = url
        self.channel = channel
        self.progress_channel = progress_channel
        self.listeners: list[Callable[[], None]] = []
        # Called with the position the read models reached, whichever process moved them.
        self.progress_listeners: list[Callable[[int], None]] = []
        self.listening = threading.Event()  # set while the LISTENs are in place
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _progressed(self, payload: str) -> None:
        try:
            position = int(payload)
        except ValueError:
            log.warning("ignored a tracking notification without a position: %r", payload)
            return
        for listener in self.progress_listeners:
            listener(position)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    if self.progress_channel is not None:
                        conn.execute(f'LISTEN "{self.progress_channel}"')
                    self.listening.set()
                    self._notify()  # anything saved while we were not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=1):
                            if note.channel == self.progress_channel:
                                self._progressed(note.payload)
                            else:
                                self._notify()
            except psycopg.Error as error:
                self.listening.clear()
                log.warning("LISTEN connection lost (%s); reconnecting", error)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
