"""/api/v1/sites: register and list an account's sites."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from starlette.responses import Response

from automation.api.answers import Site, Sites, ok
from automation.api.deps import AccountId, AppDep, ReadsDep
from automation.api.json_route import JsonRoute
from automation.api.responses import json, raw_json
from automation.api.schemas import SiteCreate
from projections.run_document import iso
from projections.sites import sites_body

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], route_class=JsonRoute)


@router.post("", status_code=201, responses=ok(Site, 201))
async def create_site(
    body: SiteCreate, account_id: AccountId, app: AppDep, reads: ReadsDep
) -> Response:
    written = await anyio.to_thread.run_sync(
        app.register_site, account_id, body.name, body.timezone
    )
    await reads.caught_up(written.position)
    site = written.value
    return json(
        {
            "site_id": str(site.id),
            "name": site.name,
            "timezone": site.timezone,
            "created_at": iso(site.created_at),
        },
        201,
    )


@router.get("", responses=ok(Sites))
async def list_sites(account_id: AccountId, reads: ReadsDep) -> Response:
    return raw_json(await reads.query(sites_body, account_id))
