"""The two hottest reads, current_run and history: registered first and free of FastAPI's
dependency machinery, whose cost per request is larger than the read itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from automation.api.answers import CurrentRun, History, ok
from automation.api.deps import caller_site
from automation.api.openapi import query_id
from automation.api.read_groups import group_of
from automation.api.responses import raw_json
from automation.api.routes.run_pages import FILTER_PARAMETERS, PAGE_PARAMETERS, site_history_page
from projections.current_run import current_run_body
from projections.history import history_body
from projections.hot_rows import current_run_bodies, history_bodies

router = APIRouter(prefix="/api/v1/automation", tags=["automation"])

# These take their parameters by hand (see deps.caller_site); this documents them.
SITE_ID_PARAMETER = {"parameters": [query_id("site_id")]}


@router.get("/current_run", openapi_extra=SITE_ID_PARAMETER, responses=ok(CurrentRun))
async def current_run(request: Request) -> Response:
    reads, site_id = await caller_site(request)
    if reads.views.dialect == "sqlite":  # microseconds, inline: nothing to share
        body = await reads.query(current_run_body, site_id)
    else:  # PostgreSQL: waiting reads share one query (api/read_groups.py)
        body = await group_of(reads, current_run_bodies).get(str(site_id))
    return raw_json('{"run":' + (body or "null") + "}")


@router.get(
    "/history",
    openapi_extra={"parameters": [query_id("site_id"), *PAGE_PARAMETERS, *FILTER_PARAMETERS]},
    responses=ok(History),
)
async def history(request: Request) -> Response:
    """The site's last 20 runs, newest first; with paging or filters, any of its runs."""
    if len(request.query_params) > 1 or "site_id" not in request.query_params:
        return await site_history_page(request)
    reads, site_id = await caller_site(request)
    if reads.views.dialect == "sqlite":
        return raw_json(await reads.query(history_body, site_id))
    body = await group_of(reads, history_bodies).get(str(site_id))
    return raw_json(body or '{"runs":[]}')
