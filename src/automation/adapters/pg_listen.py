"""Wake-ups from PostgreSQL: LISTEN on the channel the event recorder NOTIFYs on each save.

A lost notification or a dropped connection only delays a follower until its next poll:
followers also poll on a timer, and this thread reconnects by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)


class PgWakeups:
    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self.listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self._notify()  # anything saved while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._notify()
            except psycopg.Error as error:
                log.warning("LISTEN connection lost (%s); reconnecting", error)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
