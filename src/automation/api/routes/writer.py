"""/api/v1/writer: the writing tasks, content and images the pipeline made."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path
from starlette.responses import Response

from automation.api.answers import Content, ok
from automation.api.deps import ServicesDep, SiteId
from automation.api.errors import ApiError
from automation.api.responses import json
from automation.api.routes.listings import add_listings

router = APIRouter(prefix="/api/v1/writer", tags=["writer"])


def _not_found(kind: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"{kind.replace('_', ' ')} not found")


add_listings(router, ("tasks", "content", "image_prompts", "images"))

ItemId = Annotated[str, Path(max_length=100)]  # ids are UUIDs; anything longer names nothing


@router.get("/content/{content_id}", responses=ok(Content))
async def get_content(content_id: ItemId, site_id: SiteId, services: ServicesDep) -> Response:
    item: dict[str, Any] | None = await anyio.to_thread.run_sync(
        services.content.content_item, site_id, content_id
    )
    if item is None:
        raise _not_found("content")
    return json(item)


@router.get(
    "/images/{image_id}/file",
    response_class=Response,
    responses={200: {"description": "the image file", "content": {"image/svg+xml": {}}}},
)
async def get_image_file(image_id: ItemId, site_id: SiteId, services: ServicesDep) -> Response:
    found = await anyio.to_thread.run_sync(services.content.image_file, site_id, image_id)
    if found is None:
        raise _not_found("image")
    media_type, data = found
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
