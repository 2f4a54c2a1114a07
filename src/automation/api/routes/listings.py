"""The content listings: one endpoint per kind, all with ``status``, ``limit``, ``offset``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from starlette.responses import Response

from automation.api.answers import LISTINGS, ok
from automation.api.deps import ServicesDep, SiteId
from automation.api.responses import json

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Status = Annotated[str | None, Query(max_length=40)]


def listing_endpoint(kind: str) -> Callable[..., Awaitable[Response]]:
    async def list_items(
        services: ServicesDep,
        site_id: SiteId,
        status: Status = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        count, results = await anyio.to_thread.run_sync(
            services.content.list_items, kind, site_id, status, limit, offset
        )
        return json({"count": count, "results": results})

    list_items.__name__ = f"list_{kind}"
    return list_items


def add_listings(router: APIRouter, kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        router.add_api_route(
            f"/{kind}",
            listing_endpoint(kind),
            methods=["GET"],
            summary=f"List {kind.replace('_', ' ')}",
            responses=ok(LISTINGS[kind]),
        )
