"""Work queues on both buses: at-least-once delivery, parking, and graceful stops."""

from __future__ import annotations

import asyncio

import pytest

from automation.application.ports import WorkBus, WorkMessage
from tests.support import work_bus as work_buses
from tests.support.work_bus import MAX_DELIVERIES, eventually, parked

# Both buses: pytest finds the fixture by its name in this module.
bus = work_buses.bus


@pytest.mark.anyio
async def test_a_failing_message_is_parked_after_its_retries_and_blocks_nothing(
    bus: WorkBus,
) -> None:
    attempts: dict[str, int] = {}
    done: list[str] = []

    async def handler(message: WorkMessage) -> None:
        key = str(message.body["n"])
        attempts[key] = attempts.get(key, 0) + 1
        if key == "poison":
            raise RuntimeError("this message can never be handled")
        done.append(key)

    await bus.send("work", {"n": "poison"}, "m-poison")
    for n in range(5):
        await bus.send("work", {"n": str(n)}, f"m-{n}")
    await bus.consume("work", handler, prefetch=2)
    await eventually(lambda: len(done) == 5 and attempts.get("poison") == MAX_DELIVERIES)
    await asyncio.sleep(0.3)  # no further attempt comes after the last one
    assert attempts["poison"] == MAX_DELIVERIES
    assert sorted(done) == ["0", "1", "2", "3", "4"]
    await eventually(lambda: True)
    assert await parked(bus, "work") == [{"n": "poison"}]


@pytest.mark.anyio
async def test_a_message_that_fails_once_is_delivered_again_and_handled(bus: WorkBus) -> None:
    seen: list[int] = []

    async def handler(message: WorkMessage) -> None:
        seen.append(message.delivery_count)
        if message.delivery_count == 0:
            raise RuntimeError("transient")

    await bus.send("work", {"n": 1}, "m-1")
    await bus.consume("work", handler, prefetch=1)
    await eventually(lambda: len(seen) == 2)
    assert seen == [0, 1]
    assert await parked(bus, "work") == []


@pytest.mark.anyio
async def test_stopping_lets_in_flight_work_finish(bus: WorkBus) -> None:
    started, finished = asyncio.Event(), []

    async def slow(message: WorkMessage) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.append(message.body["n"])

    await bus.send("work", {"n": 1}, "m-1")
    await bus.consume("work", slow, prefetch=1)
    await asyncio.wait_for(started.wait(), 15)
    await bus.stop_consuming(grace=5)
    assert finished == [1]


@pytest.mark.anyio
async def test_work_still_in_flight_after_the_grace_is_handed_back_not_lost(
    bus: WorkBus,
) -> None:
    started = asyncio.Event()
    handled: list[int] = []

    async def stuck(message: WorkMessage) -> None:
        started.set()
        await asyncio.sleep(60)

    async def quick(message: WorkMessage) -> None:
        handled.append(int(str(message.body["n"])))

    await bus.send("work", {"n": 7}, "m-7")
    await bus.consume("work", stuck, prefetch=1)
    await asyncio.wait_for(started.wait(), 15)
    await bus.stop_consuming(grace=0.2)
    await bus.consume("work", quick, prefetch=1)  # as a restarted worker would
    await eventually(lambda: handled == [7])
