"""Reading the read models from request handlers.

SQLite reads take microseconds, so they run on the event loop; PostgreSQL reads go to a
worker thread so a slow query never holds up other requests.
"""

from __future__ import annotations

import asyncio
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
        projector = self.services.projector
        timeout = self.services.settings.read_your_writes_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.0005
        while await self.query(_min_position, [p.name for p in projector.projections]) < position:
            if loop.time() > deadline:
                raise ApiError(503, "not_ready", "the read models are behind; try again")
            projector.wake()
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
