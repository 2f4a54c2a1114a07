"""/api/v1/planner: import keywords and list the planner's content."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from starlette.responses import Response

from automation.api.deps import ServicesDep, SiteId
from automation.api.responses import json
from automation.api.schemas import KeywordsImport
from automation.application.ports import KeywordInput

router = APIRouter(prefix="/api/v1/planner", tags=["planner"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Status = Annotated[str | None, Query(max_length=40)]


@router.post("/keywords", status_code=201)
async def import_keywords(body: KeywordsImport, site_id: SiteId, services: ServicesDep) -> Response:
    items = [
        KeywordInput(item) if isinstance(item, str) else KeywordInput(item.keyword, item.volume)
        for item in body.keywords
    ]
    result = await anyio.to_thread.run_sync(
        services.content.add_keywords, site_id, items, services.app.clock.now()
    )
    return json({"created": result.created, "duplicates": result.duplicates}, 201)


async def listing(
    services: ServicesDep,
    kind: str,
    site_id: SiteId,
    status: str | None,
    limit: int,
    offset: int,
) -> Response:
    count, results = await anyio.to_thread.run_sync(
        services.content.list_items, kind, site_id, status, limit, offset
    )
    return json({"count": count, "results": results})


@router.get("/keywords")
async def list_keywords(
    services: ServicesDep,
    site_id: SiteId,
    status: Status = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    return await listing(services, "keywords", site_id, status, limit, offset)


@router.get("/clusters")
async def list_clusters(
    services: ServicesDep,
    site_id: SiteId,
    status: Status = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    return await listing(services, "clusters", site_id, status, limit, offset)


@router.get("/ideas")
async def list_ideas(
    services: ServicesDep,
    site_id: SiteId,
    status: Status = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    return await listing(services, "ideas", site_id, status, limit, offset)
