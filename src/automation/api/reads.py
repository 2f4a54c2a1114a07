"""Reading the read models from request handlers.

SQLite reads take microseconds, so they run on the event loop; PostgreSQL reads go to a
worker thread so a slow query never holds up other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import anyio.to_thread

from automation.adapters.sql import Database, Tx
from automation.api.errors import ApiError
from automation.bootstrap import Services
from automation.domain.errors import RunNotFoundError, SiteNotFoundError
from projections.history import run_owner
from projections.sites import site_owner

T = TypeVar("T")


class Reads:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.views: Database = services.views
        self._inline = services.views.dialect == "sqlite"
        # Sites and runs never change owner, so whose they are can be remembered.
        self._site_owners: dict[UUID, str] = {}
        self._run_owners: dict[UUID, tuple[str, str]] = {}
        # Commands waiting for the read models to reach a log position, woken by this
        # process's projector, or on PostgreSQL by the NOTIFY of whichever process's
        # projector committed the position, rather than each polling the positions.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reached = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        services.projector.on_progress.append(self._progressed)
        if services.wakeups is not None:
            services.wakeups.progress_listeners.append(self._progressed)

    def _progressed(self, position: int) -> None:
        """Called by the projector's thread after each commit."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release, position)

    def _release(self, position: int) -> None:
        self._reached = max(self._reached, position)
        still: list[tuple[int, asyncio.Future[None]]] = []
        for wanted, future in self._waiting:
            if wanted > self._reached:
                still.append((wanted, future))
            elif not future.done():
                future.set_result(None)
        self._waiting = still

    def _query(self, fn: Callable[..., T], *args: Any) -> T:
        with self.views.read() as tx:
            return fn(tx, *args)

    async def query(self, fn: Callable[..., T], *args: Any) -> T:
        if self._inline:
            return self._query(fn, *args)
        return await anyio.to_thread.run_sync(self._query, fn, *args)

    async def owned_site(self, account_id: UUID, site_id: UUID) -> UUID:
        owner = self._site_owners.get(site_id)
        if owner is None:
            owner = await self.query(site_owner, site_id)
            if owner is not None:
                self._site_owners[site_id] = owner
        if owner != str(account_id):
            raise SiteNotFoundError()
        return site_id

    async def owned_run(self, account_id: UUID, run_id: UUID) -> tuple[UUID, UUID]:
        """(run_id, site_id) of a run of this account; 404 for any other."""
        owner = self._run_owners.get(run_id)
        if owner is None:
            owner = await self.query(run_owner, run_id)
            if owner is not None:
                self._run_owners[run_id] = owner
        if owner is None or owner[0] != str(account_id):
            raise RunNotFoundError()
        return run_id, UUID(owner[1])

    async def caught_up(self, position: int) -> None:
        """Wait until the read models show the command that wrote ``position``."""
        if position <= self._reached:
            return
        projector = self.services.projector
        names = [p.name for p in projector.projections]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.settings.read_your_writes_timeout
        if not projector.is_running() and self.services.wakeups is None:
            await self._poll(position, names, deadline)  # nothing here is told of progress
            return
        self._loop = loop
        arrived: asyncio.Future[None] = loop.create_future()
        # Wait first, then look: progress reported after this line wakes the future. The
        # positions are read again now and then, should a notification be lost.
        self._waiting.append((position, arrived))
        recheck = 0.025
        try:
            while not arrived.done():
                reached = await self.query(_min_position, names)
                if reached >= position:
                    self._release(reached)
                    return
                projector.wake()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ApiError(503, "not_ready", "the read models are behind; try again")
                recheck = min(recheck * 2, 0.5)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(arrived), min(recheck, remaining))
        finally:
            self._waiting = [(p, f) for p, f in self._waiting if f is not arrived]

    async def _poll(self, position: int, names: list[str], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0005
        while await self.query(_min_position, names) < position:
            if loop.time() > deadline:
                raise ApiError(503, "not_ready", "the read models are behind; try again")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)


def _min_position(tx: Tx, names: list[str]) -> int:
    placeholders = ",".join("?" * len(names))
    row = tx.fetchone(
        f"SELECT MIN(position), COUNT(*) FROM projection_tracking WHERE name IN ({placeholders})",
        names,
    )
    if row is None or row[1] < len(names):
        return 0
    return int(row[0])
