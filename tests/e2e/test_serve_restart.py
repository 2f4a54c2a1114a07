"""`automation serve` killed in the middle of a run, then started again: the run goes on
from where it was, and ends with exactly what an uninterrupted run of the same work makes.

Black-box: the server is a real process (on the embedded default, and on PostgreSQL with
RabbitMQ), killed with SIGKILL, so nothing gets a chance to tidy up. Two sites get the same
keywords and config; the first one's run is killed and resumed by the restart, the second
one's runs undisturbed. The local AI provider is deterministic, so every listing, every
stage's counts and credits, and the charge must come out the same, and the killed run's
event history must still record each batch once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest

from automation.config import Settings
from tests.conftest import Api
from tests.support import pipeline as stacks
from tests.support.pipeline import KEYWORDS
from tests.support.serve import ADMIN, Serve

AUTOMATION = "/api/v1/automation"
CREDITS = 1_000_000
# Pauses between stages make the run last a few seconds, so the kill lands in its middle
# (and a due step has to survive the restart).
CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 1,
    "stage_1_batch_size": 7,
    "stage_2_batch_size": 2,
    "stage_3_batch_size": 3,
    "stage_4_batch_size": 2,
    "stage_5_batch_size": 2,
    "stage_6_batch_size": 3,
}
LISTINGS = {
    "/api/v1/planner/keywords": ("keyword", "status"),
    "/api/v1/planner/clusters": ("name", "status"),
    "/api/v1/planner/ideas": ("title", "status"),
    "/api/v1/writer/tasks": ("title", "status"),
    "/api/v1/writer/content": ("title", "status", "word_count"),
    "/api/v1/writer/images": ("status",),
}


# The embedded default, or PostgreSQL with RabbitMQ (both variables set), as in
# tests/support/pipeline.py: pytest finds fixtures by their names in this module.
stack = stacks.stack
backend = stacks.backend


@pytest.fixture
def serve(stack: Settings, tmp_path: Path) -> Iterator[Serve]:
    server = Serve(stack, tmp_path / "serve.log")
    try:
        yield server
    finally:
        server.stop()


class ExchangeQueue:
    """Another service's queue on the events exchange, bound before the server starts, so
    it keeps every CloudEvent published while the test runs, the kill included."""

    def __init__(self, settings: Settings) -> None:
        assert settings.amqp_url
        self.url, self.exchange = settings.amqp_url, settings.events_exchange
        self.name = f"{settings.queue_prefix}acceptance"

    async def _channel(self) -> tuple[Any, Any]:
        connection = await aio_pika.connect(self.url, timeout=10)
        return connection, await connection.channel()

    def bind(self) -> None:
        async def bind() -> None:
            connection, channel = await self._channel()
            async with connection:
                exchange = await channel.declare_exchange(
                    self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
                queue = await channel.declare_queue(self.name, durable=True)
                await queue.bind(exchange, routing_key="#")

        asyncio.run(bind())

    def drain(self, wanted: set[str], timeout: float = 30) -> list[dict[str, Any]]:
        """Every message in the queue, in arrival order, until ``wanted`` ids arrived."""

        async def drain() -> list[dict[str, Any]]:
            connection, channel = await self._channel()
            messages: list[dict[str, Any]] = []
            async with connection:
                queue = await channel.get_queue(self.name)
                deadline = asyncio.get_running_loop().time() + timeout
                while not wanted <= {m["id"] for m in messages}:
                    message = await queue.get(fail=False)
                    if message is None:
                        assert asyncio.get_running_loop().time() < deadline, "events missing"
                        await asyncio.sleep(0.1)
                        continue
                    await message.ack()
                    messages.append(orjson.loads(message.body))
                await queue.delete(if_unused=False, if_empty=False)
                await channel.exchange_delete(self.exchange)
            return messages

        return asyncio.run(drain())


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def open_account(serve: Serve) -> Api:
    done = subprocess.run(
        [*ADMIN, "create-account", "Acme", "--credits", str(CREDITS)],
        env=serve.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    opened = json.loads(done.stdout.strip().splitlines()[-1])
    return Api(serve.url, opened["token"], opened["account_id"])


def prepared_site(api: Api, name: str) -> str:
    site = api.site(name)
    ok(api.keywords(site, KEYWORDS), 201)
    ok(api.put(f"{AUTOMATION}/update_config", CONFIG, site_id=site))
    return site


def current(api: Api, site: str) -> dict[str, Any] | None:
    run: dict[str, Any] | None = ok(api.get(f"{AUTOMATION}/current_run", site_id=site))["run"]
    return run


def ended(api: Api, site: str, run_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        runs = ok(api.get(f"{AUTOMATION}/history", site_id=site))["runs"]
        if runs and runs[0]["run_id"] == run_id and runs[0]["status"] != "running":
            latest: dict[str, Any] = runs[0]
            return latest
        assert time.monotonic() < deadline, f"the run did not end: {runs[:1]}"
        time.sleep(0.1)


def state(api: Api, run_id: str) -> dict[str, Any]:
    """The run folded from its whole stored history."""
    run: dict[str, Any] = ok(api.get(f"{AUTOMATION}/runs/{run_id}/state"))["run"]
    return run


def events(api: Api, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = ok(
            api.get(f"{AUTOMATION}/runs/{run_id}/events", after_version=len(found), limit=1000)
        )
        if not page["events"]:
            return found
        found += page["events"]


def made(api: Api, site: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every listing of the site, as a multiset of the fields that do not name ids."""
    listings: dict[str, Counter[tuple[Any, ...]]] = {}
    for path, fields in LISTINGS.items():
        body = ok(api.get(path, site_id=site, limit=1000))
        assert body["count"] == len(body["results"])
        listings[path] = Counter(tuple(item[f] for f in fields) for item in body["results"])
    return listings


def test_a_run_survives_serve_being_killed_and_ends_as_an_undisturbed_one(
    serve: Serve, stack: Settings
) -> None:
    exchange = ExchangeQueue(stack) if stack.amqp_url else None
    if exchange is not None:
        exchange.bind()
    serve.start()
    api = open_account(serve)
    killed_site, calm_site = prepared_site(api, "Killed"), prepared_site(api, "Calm")

    run_id = ok(api.run_now(killed_site), 202)["run_id"]
    deadline = time.monotonic() + 30
    while True:  # in the middle: some of the work done, much of it not
        run = current(api, killed_site)
        assert run is not None, "the run ended before the kill"
        if run["current_stage"] >= 2:
            assert run["current_stage"] < 6, run  # stages and their delays still to come
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    serve.kill()
    serve.start()
    assert ended(api, killed_site, run_id)["status"] == "completed"

    calm_id = ok(api.run_now(calm_site), 202)["run_id"]
    assert ended(api, calm_site, calm_id)["status"] == "completed"

    # The same work made, and read the same, through every listing.
    assert made(api, killed_site) == made(api, calm_site)
    killed, calm = state(api, run_id), state(api, calm_id)
    assert [
        (s["stage"], s["status"], s["processed"], s["created"], s["credits_used"])
        for s in killed["stages"]
    ] == [
        (s["stage"], s["status"], s["processed"], s["created"], s["credits_used"])
        for s in calm["stages"]
    ]
    assert killed["total_credits_used"] == calm["total_credits_used"] > 0

    # Charged once each: the balance fell by exactly what the two runs used.
    balance = ok(api.get(f"{AUTOMATION}/estimate", site_id=calm_site))["current_balance"]
    assert balance == CREDITS - killed["total_credits_used"] - calm["total_credits_used"]

    # The killed run's history: contiguous versions, each batch recorded once, and its
    # credits events adding up to what it used.
    history = events(api, run_id)
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    recorded = [
        (e["data"]["stage"], e["data"]["batch"]) for e in history if e["type"] == "BatchCompleted"
    ]
    assert len(recorded) == len(set(recorded))
    dispatched = {
        (e["data"]["stage"], e["data"]["batch"]) for e in history if e["type"] == "BatchDispatched"
    }
    assert set(recorded) == dispatched
    consumed = sum(e["data"]["amount"] for e in history if e["type"] == "CreditsConsumed")
    assert consumed == killed["total_credits_used"]
    assert sum(1 for e in history if e["type"] == "RunCompleted") == 1

    if exchange is not None:
        # Another service saw every event of the killed run as a CloudEvent: duplicates
        # (republished after the kill) identical, first arrivals in version order.
        published = exchange.drain({e["id"] for e in history})
        first: dict[str, dict[str, Any]] = {}
        for message in published:
            assert first.setdefault(message["id"], message) == message
        of_run = [m for m in first.values() if m["subject"] == run_id]
        assert [m["id"] for m in of_run] == [e["id"] for e in history]
        assert all(m["type"].startswith("automation.") for m in of_run)
