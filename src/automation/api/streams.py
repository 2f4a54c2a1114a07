"""One follower of the event log for all live streams of a process.

However many clients follow runs, the process reads the log once per change (woken at
once by saves in this process, else by polling) and hands each new run event to the
queues of that run's followers, so followers cost the store nothing. While nobody follows,
it reads nothing but the log's last position, so an idle API process does not read and
decode every event stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any
from uuid import UUID

import anyio.to_thread

from automation.application.event_catalogue import describe
from projections.run_document import is_run_event
from projections.runtime import EventSource

log = logging.getLogger(__name__)


class RunStreams:
    def __init__(self, source: EventSource, poll_interval: float = 0.5) -> None:
        self.source = source
        self.poll_interval = poll_interval
        self._followers: dict[UUID, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._position = 0
        self._subscriptions = 0  # how many subscribe() calls so far

    def wake_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._position = await anyio.to_thread.run_sync(self.source.last_position)
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, run_id: UUID) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._followers[run_id].add(queue)
        self._subscriptions += 1
        return queue

    def unsubscribe(self, run_id: UUID, queue: asyncio.Queue[dict[str, Any]]) -> None:
        followers = self._followers.get(run_id)
        if followers is not None:
            followers.discard(queue)
            if not followers:
                del self._followers[run_id]

    async def _follow(self) -> None:
        while True:
            try:
                if not self._followers and await self._skip_unfollowed():
                    notes = []
                else:
                    notes = await anyio.to_thread.run_sync(self.source.read, self._position, 1000)
            except Exception:
                log.exception("the live streams could not read the log; retrying")
                await asyncio.sleep(1)
                continue
            for note in notes:
                self._position = note.position
                if not is_run_event(note.event):
                    continue
                for queue in self._followers.get(note.event.originator_id, ()):
                    queue.put_nowait(describe(note.event))
            if notes:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _skip_unfollowed(self) -> bool:
        """Move past what is stored while nobody follows; False if someone subscribed
        meanwhile. A subscriber reads its run's stored history after subscribing, so
        everything up to a position read before it subscribed reaches it that way; a
        position read after it subscribed might be past events its history read has not
        seen yet, so that position is dropped and the log read from where it was."""
        subscriptions = self._subscriptions
        last = await anyio.to_thread.run_sync(self.source.last_position)
        if self._subscriptions != subscriptions:
            return False
        self._position = max(self._position, last)
        return True
