"""/api/v1/planner: import keywords and list the planner's content."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from starlette.responses import Response

from automation.api.answers import KeywordsImported, ok
from automation.api.deps import ServicesDep, SiteId
from automation.api.json_route import JsonRoute
from automation.api.responses import json
from automation.api.routes.listings import add_listings
from automation.api.schemas import KeywordsImport
from automation.application.ports import KeywordInput

router = APIRouter(prefix="/api/v1/planner", tags=["planner"], route_class=JsonRoute)


@router.post("/keywords", status_code=201, responses=ok(KeywordsImported, 201))
async def import_keywords(body: KeywordsImport, site_id: SiteId, services: ServicesDep) -> Response:
    items = [
        KeywordInput(item) if isinstance(item, str) else KeywordInput(item.keyword, item.volume)
        for item in body.keywords
    ]
    result = await anyio.to_thread.run_sync(
        services.content.add_keywords, site_id, items, services.app.clock.now()
    )
    return json({"created": result.created, "duplicates": result.duplicates}, 201)


add_listings(router, ("keywords", "clusters", "ideas"))
