"""The process's one follower of the log for live streams (``automation.api.streams``).

The log is a fake ``EventSource`` here (a port, at unit level) holding real run events.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from automation.api.streams import RunStreams
from automation.domain.run import AutomationRun
from projections.runtime import Notification

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FakeLog:
    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.reads: list[int] = []  # the `after` of every read
        # When set, last_position waits for it (a subscriber arriving during the call).
        self.hold_last_position: threading.Event | None = None

    def append(self, event: object) -> None:
        self.notes.append(Notification(len(self.notes) + 1, type(event).__qualname__, event))

    def read(self, after: int, limit: int) -> list[Notification]:
        self.reads.append(after)
        return [n for n in self.notes if n.position > after][:limit]

    def last_position(self) -> int:
        if self.hold_last_position is not None:
            self.hold_last_position.wait(5)
        return len(self.notes)


def new_run() -> AutomationRun:
    return AutomationRun(
        id=uuid4(),
        site_id=uuid4(),
        account_id=uuid4(),
        trigger_type="manual",
        config={},
        estimated_credits=10,
        reserved_credits=12,
        estimate_basis={},
        at=T0,
    )


def store(log: FakeLog, run: AutomationRun) -> None:
    for event in run.collect_events():
        log.append(event)


async def settle() -> None:
    """Let the follower run its loop (its calls go to worker threads)."""
    for _ in range(20):
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_with_nobody_following_only_the_last_position_is_read() -> None:
    log = FakeLog()
    store(log, new_run())
    streams = RunStreams(log, poll_interval=0.01)
    await streams.start()
    try:
        for _ in range(5):
            store(log, new_run())
            streams.wake_threadsafe()
            await settle()
        assert log.reads == []  # nothing read or decoded for nobody
        stored_while_idle = len(log.notes)
        run = new_run()
        queue = streams.subscribe(run.id)
        store(log, run)
        streams.wake_threadsafe()
        delivered = await asyncio.wait_for(queue.get(), 2)
        assert (delivered["type"], delivered["version"]) == ("RunStarted", 1)
        assert log.reads[0] == stored_while_idle  # from where the idle follower got to
    finally:
        await streams.stop()


@pytest.mark.anyio
async def test_a_subscriber_arriving_while_the_position_is_read_misses_nothing() -> None:
    """The follower asks for the log's last position while nobody follows; meanwhile a
    client subscribes, reads its run's history (which cannot yet hold the run's next
    event), and that event is stored. The follower must not move past it."""
    log = FakeLog()
    store(log, new_run())
    streams = RunStreams(log, poll_interval=0.01)
    await streams.start()
    try:
        run = new_run()
        run.pause(T0 + timedelta(minutes=1))
        held = log.hold_last_position = threading.Event()
        streams.wake_threadsafe()
        await asyncio.sleep(0.05)  # the follower is now inside last_position
        queue = streams.subscribe(run.id)
        store(log, run)  # stored after the subscriber's history read
        log.hold_last_position = None
        held.set()  # last_position now answers a position past the run's events
        streams.wake_threadsafe()
        types = [(await asyncio.wait_for(queue.get(), 2))["type"] for _ in range(2)]
        assert types == ["RunStarted", "RunPaused"]
    finally:
        await streams.stop()
