"""The service recovers by itself when PostgreSQL drops every connection (as it does when
it restarts): commands, the projector and readiness come back without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import pytest

from automation.api.routes.health import readiness
from automation.bootstrap import Services
from automation.config import Settings
from automation.domain.estimate import PendingWork

T = TypeVar("T")


@pytest.fixture
def backend() -> str:
    return "postgres"


def drop_every_connection(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def eventually(action: Callable[[], T], seconds: float = 15) -> T:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_commands_reads_and_projections_come_back_after_postgres_drops_connections(
    services: Services, settings: Settings
) -> None:
    assert settings.database_url
    services.start_following()
    services.projector.start(poll_interval=0.2)
    app = services.app
    account_id, _ = app.open_account("Acme", 1000)
    site = app.register_site(account_id, "Site", "UTC").value.id
    run = app.start_run(account_id, site, PendingWork()).value
    services.projector.catch_up()

    assert drop_every_connection(settings.database_url) > 0

    paused = eventually(lambda: app.pause_run(account_id, run.id))
    assert paused.value == "paused"
    eventually(lambda: services.projector.position() >= paused.position or _fail())
    report = eventually(lambda: readiness(services) if readiness(services)["ready"] else _fail())
    assert report["ready"] is True
    with services.views.read() as tx:
        row = tx.fetchone("SELECT body FROM current_runs WHERE site_id = ?", (str(site),))
    assert row is not None
    assert '"status":"paused"' in row[0]


def _fail() -> object:
    raise AssertionError("not yet")


@pytest.mark.anyio
async def test_the_work_bus_comes_back_after_rabbitmq_drops_its_connections(
    amqp_url: str, rabbit_names: dict[str, str]
) -> None:
    import asyncio
    import shutil
    import subprocess

    from automation.adapters.rabbitmq import RabbitMQ, RabbitWorkBus
    from automation.application.ports import WorkMessage

    rabbitmqctl = shutil.which("rabbitmqctl")
    assert rabbitmqctl, "rabbitmqctl is needed to drop the broker's connections"
    bus = RabbitWorkBus(RabbitMQ(amqp_url), rabbit_names["AUTOMATION_QUEUE_PREFIX"])
    handled: list[object] = []

    async def handler(message: WorkMessage) -> None:
        handled.append(message.body["n"])

    try:
        await bus.consume("work", handler, prefetch=1)
        await bus.send("work", {"n": 1}, "m-1")
        for _ in range(100):
            if handled:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(
            subprocess.run,
            [rabbitmqctl, "close_all_connections", "test"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        # connect_robust reconnects and restores the channel, queue and consumer.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                await bus.send("work", {"n": 2}, "m-2")
                break
            except Exception:  # noqa: BLE001 - whatever the channel says while it reconnects
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.5)
        while 2 not in handled:
            assert asyncio.get_running_loop().time() < deadline, handled
            await asyncio.sleep(0.1)
    finally:
        await bus.close()
        channel = await bus.rabbit.channel()
        for queue in (bus.queue_name("work"), bus.dead_letter_queue_name("work")):
            await channel.queue_delete(queue)
        await channel.exchange_delete(bus.prefix + "dead")
        await bus.rabbit.close()
