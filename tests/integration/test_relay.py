"""Every stored event reaches other services as a CloudEvent, in order, despite crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import anyio.to_thread
import orjson
import psycopg
import pytest

from automation.adapters.leadership import FileLeadership, PostgresLeadership
from automation.application.ports import Leadership
from automation.bootstrap import Services, build
from automation.config import Settings
from automation.domain.estimate import PendingWork
from tests.conftest import settings_env


@pytest.fixture
async def wired(rabbit_settings: Settings) -> AsyncIterator[Services]:
    services = build(rabbit_settings)
    yield services
    services.close()


class Subscriber:
    """Another service: a queue bound to every routing key of the events exchange."""

    def __init__(self, url: str, exchange: str) -> None:
        self.url, self.exchange_name = url, exchange
        self.messages: list[dict[str, Any]] = []
        self.headers: list[Any] = []

    async def __aenter__(self) -> Subscriber:
        self.connection = await aio_pika.connect(self.url)
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                self.messages.append(orjson.loads(message.body))
                self.headers.append((message.content_type, message.routing_key, message.message_id))

        await queue.consume(take)
        return self

    async def __aexit__(self, *_: Any) -> None:
        channel = await self.connection.channel()
        await channel.exchange_delete(self.exchange_name)
        await self.connection.close()

    async def wait_for_ids(self, count: int, timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len({m["id"] for m in self.messages}) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"got {len({m['id'] for m in self.messages})} of {count} events"
                )
            await asyncio.sleep(0.05)


def run_some_runs(services: Services, runs: int) -> tuple[str, str, list[str]]:
    app = services.app
    account_id, _ = app.open_account("Acme", 100_000)
    site_id = app.register_site(account_id, "Shoes", "UTC").value.id
    run_ids = []
    for _ in range(runs):
        run = app.start_run(account_id, site_id, PendingWork(keywords=8)).value
        app.pause_run(account_id, run.id)
        app.resume_run(account_id, run.id)
        app.cancel_run(account_id, run.id)
        run_ids.append(str(run.id))
    return str(account_id), str(site_id), run_ids


@pytest.mark.anyio
async def test_every_stored_event_is_published_as_a_cloud_event_in_order(
    wired: Services, rabbit_settings: Settings
) -> None:
    assert wired.relay is not None
    assert rabbit_settings.amqp_url
    async with Subscriber(rabbit_settings.amqp_url, rabbit_settings.events_exchange) as sub:
        account_id, site_id, run_ids = await anyio.to_thread.run_sync(run_some_runs, wired, 3)
        stored = wired.app.recorder.max_notification_id() or 0
        while await wired.relay.step():
            pass
        await sub.wait_for_ids(stored)
    assert [int(m["sequence"]) for m in sub.messages] == list(range(1, stored + 1))
    run_messages = [m for m in sub.messages if m["subject"] == run_ids[0]]
    assert [m["type"] for m in run_messages] == [
        "automation.run.started.v1",
        "automation.run.paused.v1",
        "automation.run.resumed.v1",
        "automation.run.cancelled.v1",
    ]
    for message in run_messages:
        assert message["specversion"] == "1.0"
        assert message["source"] == "/automation"
        assert message["datacontenttype"] == "application/json"
        assert (message["siteid"], message["accountid"]) == (site_id, account_id)
        assert message["time"].endswith("Z")
    routing = {h[1] for h in sub.headers}
    assert {"run.started", "run.paused", "run.resumed", "run.cancelled"} <= routing
    assert all(h[0] == "application/cloudevents+json" for h in sub.headers)
    assert all(h[2] == m["id"] for h, m in zip(sub.headers, sub.messages, strict=True))
    assert not any("token_hash" in m["data"] for m in sub.messages)


def start_relay(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "automation.cli", "relay"],
        env=settings_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.anyio
async def test_a_relay_killed_mid_run_skips_nothing_after_restart(
    wired: Services, rabbit_settings: Settings
) -> None:
    assert rabbit_settings.amqp_url
    async with Subscriber(rabbit_settings.amqp_url, rabbit_settings.events_exchange) as sub:
        relay = start_relay(rabbit_settings)
        try:
            await anyio.to_thread.run_sync(run_some_runs, wired, 5)
            await sub.wait_for_ids(5)
            os.kill(relay.pid, signal.SIGKILL)  # no chance to record what it published
            relay.wait(10)
            await anyio.to_thread.run_sync(run_some_runs, wired, 5)
            relay = start_relay(rabbit_settings)
            stored = wired.app.recorder.max_notification_id() or 0
            await sub.wait_for_ids(stored)
        finally:
            relay.terminate()
            relay.wait(10)
    by_id: dict[str, dict[str, Any]] = {}
    for message in sub.messages:
        assert by_id.setdefault(message["id"], message) == message  # a duplicate is identical
    assert sorted(int(m["sequence"]) for m in by_id.values()) == list(range(1, stored + 1))
    # In order per run: the first delivery of each of a run's events comes by version.
    first_seen: dict[str, list[int]] = {}
    seen: set[str] = set()
    for message in sub.messages:
        if message["id"] not in seen:
            seen.add(message["id"])
            first_seen.setdefault(message["subject"], []).append(int(message["sequence"]))
    assert all(seq == sorted(seq) for seq in first_seen.values())


def end_session(leadership: Leadership, settings: Settings) -> None:
    """What the leader's crash does to its lock: on PostgreSQL its session ends (here from
    another connection, so the leader is not told); a file lock is freed with the
    process's descriptors."""
    if isinstance(leadership, PostgresLeadership):
        session = getattr(leadership, "_conn", None)
        assert session is not None
        assert settings.database_url
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (session.info.backend_pid,))
    else:
        assert isinstance(leadership, FileLeadership)
        leadership.release()


@pytest.mark.anyio
async def test_of_two_relays_only_the_leader_publishes_and_the_other_takes_over(
    wired: Services, rabbit_settings: Settings
) -> None:
    """Two relays on one store, stepping side by side: each event goes out once (without
    the election both read the same position and publish the same batch). When the
    leader's database session ends, as at a crash, the other one takes over from the
    tracked position: nothing is skipped."""
    assert rabbit_settings.amqp_url
    second = build(rabbit_settings)
    try:
        leader, standby = wired.relay, second.relay
        assert leader is not None
        assert standby is not None
        assert await anyio.to_thread.run_sync(leader.leadership.is_leader)  # the first to ask
        async with Subscriber(rabbit_settings.amqp_url, rabbit_settings.events_exchange) as sub:
            for _ in range(3):
                await anyio.to_thread.run_sync(run_some_runs, wired, 2)
                await asyncio.gather(leader.step(), standby.step())
                await asyncio.gather(standby.step(), leader.step())
            stored = wired.app.recorder.max_notification_id() or 0
            await sub.wait_for_ids(stored)
            assert await anyio.to_thread.run_sync(leader.leadership.is_leader)
            assert not await anyio.to_thread.run_sync(standby.leadership.is_leader)

            end_session(leader.leadership, rabbit_settings)
            await anyio.to_thread.run_sync(run_some_runs, wired, 2)
            while await standby.step() or await leader.step():
                pass
            assert await anyio.to_thread.run_sync(standby.leadership.is_leader)
            assert not await anyio.to_thread.run_sync(leader.leadership.is_leader)
            stored = wired.app.recorder.max_notification_id() or 0
            await sub.wait_for_ids(stored)
            await asyncio.sleep(0.3)  # time for a duplicate, had one been published
        ids = [m["id"] for m in sub.messages]
        assert len(ids) == len(set(ids)) == stored
        assert [int(m["sequence"]) for m in sub.messages] == list(range(1, stored + 1))
    finally:
        second.close()
