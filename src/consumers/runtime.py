"""Runs the asynchronous roles (relay, workers) and stops them gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from automation.adapters.run_metrics import QUEUE_DEPTH
from automation.application.ports import WorkBus, WorkHandler
from automation.bootstrap import Services
from consumers.orchestrator import WORK_QUEUE

log = logging.getLogger(__name__)

DEPTH_INTERVAL = 5.0  # seconds between readings of the work queue's depth


@dataclass(frozen=True)
class Subscription:
    queue: str
    handler: WorkHandler
    prefetch: int


class BackgroundRoles:
    """The relay and the work consumers of one process."""

    def __init__(
        self,
        services: Services,
        relay: bool = False,
        orchestrator: bool = False,
        workers: bool = False,
    ) -> None:
        self.services = services
        self.run_relay = relay and services.relay is not None
        self.run_orchestrator = orchestrator
        self.subscriptions = (
            [Subscription(WORK_QUEUE, services.worker, services.settings.worker_prefetch)]
            if workers
            else []
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def bus(self) -> WorkBus:
        return self.services.work_bus

    async def start(self) -> None:
        if self.services.rabbit is not None:
            try:
                await self.services.rabbit.connection()
            except Exception:  # noqa: BLE001 - robust reconnects later; readiness tells
                log.warning("RabbitMQ is not reachable yet; retrying in the background")
        if self.run_relay and self.services.relay is not None:
            self._tasks.append(asyncio.create_task(self.services.relay.run(self._stop)))
        if self.run_orchestrator:
            self._tasks.append(asyncio.create_task(self.services.orchestrator.run(self._stop)))
        if self.subscriptions:
            # A worker refills its run's stage as it records a batch, through its own bus.
            settings = self.services.settings
            self.services.worker.dispatch_through(self.bus, settings.batches_in_flight)
        for subscription in self.subscriptions:
            await self.bus.consume(subscription.queue, subscription.handler, subscription.prefetch)
        if self.subscriptions or self.run_orchestrator:
            self._tasks.append(asyncio.create_task(self._watch_depth(WORK_QUEUE)))

    async def _watch_depth(self, queue: str) -> None:
        """Keeps automation_queue_depth current for this process's /metrics."""
        gauge = QUEUE_DEPTH.labels(queue)
        while not self._stop.is_set():
            try:
                gauge.set(await self.bus.depth(queue))
            except Exception as error:  # noqa: BLE001 - a broker away: the next try tells
                log.debug("could not read the depth of %s: %s", queue, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), DEPTH_INTERVAL)

    async def stop(self) -> None:
        """Take no new work, let in-flight work finish (or hand it back), then close."""
        await self.bus.stop_consuming(self.services.settings.shutdown_grace)
        self._stop.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        await self.bus.close()
        if self.services.rabbit is not None:
            await self.services.rabbit.close()


async def run_until_signalled(
    roles: BackgroundRoles, ready: Callable[[], None] = lambda: None
) -> None:
    """Run the roles until SIGTERM or SIGINT, then stop them gracefully; ``ready`` is
    called once they have started."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await roles.start()
    ready()
    await stopping.wait()
    log.info("stopping: finishing in-flight work")
    await roles.stop()
