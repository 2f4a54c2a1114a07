"""A transient fault never parks work: a run continues within seconds of the database or the
disk coming back, with nothing in a dead-letter queue, every item processed once and the
credits exact. The watchdog is set to an hour, so only retrying (adapters/transient.py)
can carry the run on: before it, each fault parked the batch in flight and the run waited
for the watchdog.

The faults start inside a batch (an AI call of stage 4 or 6), so they always land mid-run.
PostgreSQL's fault ends every session of this process (``PGAPPNAME`` names them) for two
seconds, twice; the disk's is a tmpfs of the test's own, filled. Without the retries,
ending the sessions once parked a batch in 2 of 3 tries; two seconds of it did in 3 of 3.

The last two tests show the rules on both buses alone: attempts failing for a transient
reason are not counted, and work parked anyway comes back once the service is.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from automation.adapters.ai_local import LocalAIProvider
from automation.adapters.inprocess_bus import InProcessWorkBus
from automation.adapters.rabbitmq import RabbitWorkBus
from automation.application.ai import AIResult, Article, Idea
from automation.application.ports import WorkBus, WorkMessage
from automation.application.stages import RetryPolicy, StageRunner
from automation.bootstrap import Services, build
from automation.config import Settings
from consumers.orchestrator import WORK_QUEUE
from consumers.runtime import BackgroundRoles
from tests.support import work_bus as work_buses
from tests.support.pipeline import KEYWORDS, check_exactly_once, site_with_keywords
from tests.support.work_bus import MAX_DELIVERIES, eventually, parked

pytestmark = pytest.mark.anyio

bus = work_buses.bus  # both buses: pytest finds fixtures by their names

AN_HOUR = 3600.0  # the watchdog: far beyond the test's deadline
DEADLINE = 90.0  # the run must end within this (it takes seconds with the retries)
FAULTY = ("write_article", "render_image")


class FaultyAI(LocalAIProvider):
    """The local provider, which starts a fault at given calls: ``(method, n)`` is the n-th
    call of ``write_article`` (stage 4) or ``render_image`` (stage 6)."""

    def __init__(self, faults: dict[tuple[str, int], Callable[[], None]]) -> None:
        self.faults = faults
        self.calls: dict[str, int] = {}
        self.fault_times: list[float] = []

    def _maybe_fault(self, method: str) -> None:
        self.calls[method] = n = self.calls.get(method, 0) + 1
        fault = self.faults.get((method, n))
        if fault is not None:
            fault()
            self.fault_times.append(time.monotonic())

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        self._maybe_fault("write_article")
        return super().write_article(idea, keywords)

    def render_image(self, prompt: str) -> AIResult[bytes]:
        self._maybe_fault("render_image")
        return super().render_image(prompt)


def count_failures(services: Services) -> list[BaseException]:
    """The failed attempts of the worker's batches, as they happen."""
    failures: list[BaseException] = []
    process = services.worker.process

    def counted(*args: Any) -> Any:
        try:
            return process(*args)
        except Exception as error:
            failures.append(error)
            raise

    services.worker.process = counted  # type: ignore[method-assign]
    return failures


async def until_ended(services: Services, account_id: Any, run_id: Any) -> Any:
    """The run once it has ended; reading it may fail while the fault lasts."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        with contextlib.suppress(Exception):
            run = services.app.run(account_id, run_id)
            if not run.is_active:
                return run
        assert asyncio.get_running_loop().time() < deadline, "the run is stuck"
        await asyncio.sleep(0.05)


async def run_through(services: Services, ai: FaultyAI) -> float:
    """Start a run with every role in this process and wait for it to end (completed, each
    item processed once, credits exact); when it ended (``time.monotonic()``)."""
    services.worker.runner = StageRunner(services.pipeline, ai, RetryPolicy(attempts=1))
    account_id, site_id = site_with_keywords(services, KEYWORDS)
    balance_before = services.app.balance(account_id)
    roles = BackgroundRoles(services, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = services.app.start_run(
            account_id, site_id, services.content.pending_work(site_id)
        ).value.id
        run = await until_ended(services, account_id, run_id)
        ended = time.monotonic()
        assert len(ai.fault_times) == len(ai.faults), "every fault came mid-run"
        assert run.status.value == "completed", run.error
        check_exactly_once(services, account_id, site_id, run_id, balance_before)
    finally:
        await roles.stop()
    return ended


# --- PostgreSQL and RabbitMQ: PostgreSQL away for two seconds, twice --------------------------


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
async def production(
    rabbit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Services, str]]:
    # Every libpq connection of this process carries this name, so the fault ends exactly
    # this service's sessions (not those of other tests sharing the server).
    name = f"transient_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)
    # The default pool size: the more pooled connections go stale, the more attempts fail.
    settings = rabbit_settings.model_copy(update={"batch_watchdog": AN_HOUR, "db_pool_size": 10})
    services = build(settings)
    services.start_following()
    services.projector.start(poll_interval=0.2)
    yield services, name
    services.close()


class Outage:
    """PostgreSQL away for a moment, as in a restart: for ``seconds``, every session of the
    service is ended as soon as it appears (the first time, all of its pooled ones)."""

    def __init__(self, url: str, application_name: str, seconds: float) -> None:
        self.url, self.name, self.seconds = url, application_name, seconds
        self.threads: list[threading.Thread] = []
        self.ended_at = 0.0

    def __call__(self) -> None:
        assert self._terminate(), "the service had sessions to end"
        thread = threading.Thread(target=self._keep_terminating, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _keep_terminating(self) -> None:
        until = time.monotonic() + self.seconds
        while time.monotonic() < until:
            self._terminate()
            time.sleep(0.02)  # the pace of the fault, not a wait for a condition
        self.ended_at = time.monotonic()

    def _terminate(self) -> int:
        with psycopg.connect(self.url, autocommit=True, application_name="terminator") as conn:
            return len(
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (self.name,),
                ).fetchall()
            )

    def join(self) -> None:
        for thread in self.threads:
            thread.join()


async def test_a_run_completes_within_seconds_after_postgres_goes_away_twice(
    production: tuple[Services, str],
) -> None:
    services, name = production
    url = services.settings.database_url
    assert url
    outage = Outage(url, name, seconds=2.0)
    # Once in stage 4 and once in stage 6: the second comes after the service is back.
    ai = FaultyAI({(method, 2): outage for method in FAULTY})
    failures = count_failures(services)
    try:
        ended = await run_through(services, ai)
    finally:
        outage.join()
    print(
        f"\nrun completed {ended - outage.ended_at:.2f} s after the second outage ended "
        f"({len(failures)} failed attempts of batches)"
    )
    bus = services.work_bus
    assert isinstance(bus, RabbitWorkBus)
    assert await parked(bus, WORK_QUEUE) == []


# --- the embedded default: the data directory's disk full for a while ----------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own for the data directory, which the test can fill."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not shutil.which("umount"):
        pytest.skip(f"!!! cannot mount a tmpfs to fill ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    with (disk / "filler").open("wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * (1 << 20))
            filler.flush()


async def test_a_run_continues_within_seconds_after_a_full_disk_frees_up(small_disk: Path) -> None:
    settings = Settings(automation_data_dir=small_disk / "var", AUTOMATION_BATCH_WATCHDOG=AN_HOUR)
    services = build(settings)
    services.start_following()
    services.projector.start(poll_interval=0.2)
    filled = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fill_then_free() -> None:
        fill(small_disk)
        loop.call_soon_threadsafe(filled.set)

    other, _ = services.app.open_account("Other", 10)

    async def free_once_writes_fail() -> float:
        await filled.wait()
        # While the disk is full, writes fail cleanly: a command raises and stores nothing.
        with pytest.raises(Exception, match="disk is full"):
            services.app.grant_credits(other, 5)
        # The batch in flight fails too, more often than AUTOMATION_MAX_DELIVERIES allows.
        await eventually(lambda: len(failures) > settings.max_deliveries, timeout=DEADLINE)
        (small_disk / "filler").unlink()
        return time.monotonic()

    try:
        ai = FaultyAI({("write_article", 2): fill_then_free})
        failures = count_failures(services)
        freeing = asyncio.ensure_future(free_once_writes_fail())
        ended = await run_through(services, ai)
        freed = await freeing
        assert services.app.balance(other) == 10
        print(
            f"\nrun completed {ended - freed:.2f} s after the disk was freed "
            f"({len(failures)} failed attempts of batches while it was full)"
        )
        bus = services.work_bus
        assert isinstance(bus, InProcessWorkBus)
        assert await parked(bus, WORK_QUEUE) == []
    finally:
        services.close()


# --- the buses: transient failures are not counted, and parked work comes back -----------


def dropped_connection() -> Exception:
    """What a statement on a connection the server ended raises, as the store wraps it."""
    try:
        raise psycopg.OperationalError("terminating connection due to administrator command")
    except psycopg.OperationalError as error:
        try:
            raise RuntimeError("the batch could not be committed") from error
        except RuntimeError as wrapped:
            return wrapped


async def test_transient_failures_do_not_count_toward_the_delivery_limit(bus: WorkBus) -> None:
    attempts: list[int] = []

    async def handler(message: WorkMessage) -> None:
        attempts.append(message.delivery_count)
        if len(attempts) <= MAX_DELIVERIES + 2:
            raise dropped_connection()

    await bus.send("work", {"n": 1}, "m-1")
    await bus.consume("work", handler, prefetch=1)
    await eventually(lambda: len(attempts) == MAX_DELIVERIES + 3)
    assert set(attempts) == {0}  # none of the failed attempts was counted
    assert await parked(bus, "work") == []


async def test_parked_work_is_redriven_once_the_service_is_back(bus: WorkBus) -> None:
    """A message parked anyway (here: one that failed for a reason not known as transient
    while the store was away) goes back to its queue as soon as a message is handled after
    a transient failure, without waiting for the watchdog."""
    away = True
    failed: list[str] = []
    handled: list[str] = []

    async def handler(message: WorkMessage) -> None:
        name = str(message.body["n"])
        if away:
            failed.append(name)
            if name == "flaky":
                raise dropped_connection()
            raise RuntimeError("failed while the store was away, but did not say so")
        handled.append(name)

    await bus.send("work", {"n": "parked"}, "m-parked")
    await bus.consume("work", handler, prefetch=2)
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while await parked_count(bus) < 1:
        assert asyncio.get_running_loop().time() < deadline, "nothing was parked"
        await asyncio.sleep(0.05)
    await bus.send("work", {"n": "flaky"}, "m-flaky")
    await eventually(lambda: "flaky" in failed)
    away = False  # the service is back
    await eventually(lambda: sorted(handled) == ["flaky", "parked"], timeout=DEADLINE)
    assert await parked_count(bus) == 0


async def parked_count(bus: WorkBus) -> int:
    """How many messages the work queue's dead-letter queue holds (left in place)."""
    if isinstance(bus, InProcessWorkBus):
        return len(bus.dead_letters["work"])
    assert isinstance(bus, RabbitWorkBus)
    channel = await bus.rabbit.channel()
    try:
        dead = await channel.declare_queue(bus.dead_letter_queue_name("work"), passive=True)
        return int(dead.declaration_result.message_count or 0)
    finally:
        await channel.close()
