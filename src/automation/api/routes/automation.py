"""/api/v1/automation: a site's config, and starting, watching and steering its runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from automation.api import traced
from automation.api.answers import (
    Config,
    CurrentProcessing,
    Estimate,
    Logs,
    PipelineOverview,
    RunStatus,
    SchedulePreview,
    ok,
)
from automation.api.deps import (
    AccountId,
    AppDep,
    ReadsDep,
    RunId,
    RunIdParam,
    ServicesDep,
    SiteId,
    optional_uuid,
)
from automation.api.errors import ApiError
from automation.api.json_route import JsonRoute
from automation.api.openapi import query_id
from automation.api.progress import overview, processing
from automation.api.responses import json
from automation.api.schemas import ConfigUpdate
from automation.application.app import Written
from automation.domain.config import SiteConfig
from automation.domain.schedule import Schedule
from automation.domain.values import Stage
from projections.configs import config_document
from projections.current_run import current_run_body
from projections.documents import loads
from projections.logs import last_lines
from projections.run_document import iso

router = APIRouter(prefix="/api/v1/automation", tags=["automation"], route_class=JsonRoute)


def _config_view(site_id: UUID, stored: dict[str, Any], now: datetime) -> dict[str, Any]:
    config = stored["config"]
    next_run_at = None
    if config.get("is_enabled"):
        schedule = Schedule.from_config(config, stored["timezone"])
        next_run_at = iso(schedule.next_after(now).fire_at)
    return {
        "site_id": str(site_id),
        # Fields added to the config since a site's last change read as their defaults.
        **SiteConfig().as_dict(),
        **config,
        "timezone": stored["timezone"],
        "last_run_at": stored["last_run_at"],
        "next_run_at": next_run_at,
        "last_scheduled_slot": stored["last_slot"],
    }


async def _config(reads: ReadsDep, site_id: UUID, now: datetime) -> Response:
    stored = await reads.query(config_document, site_id)
    if stored is None:
        raise ApiError(404, "site_not_found", "site not found")
    return json(_config_view(site_id, stored, now))


@router.get("/config", responses=ok(Config))
async def get_config(site_id: SiteId, reads: ReadsDep, app: AppDep) -> Response:
    return await _config(reads, site_id, app.clock.now())


@router.put("/update_config", responses=ok(Config))
@traced.command("update_config")
async def update_config(
    body: ConfigUpdate, site_id: SiteId, account_id: AccountId, app: AppDep, reads: ReadsDep
) -> Response:
    changes = body.changes()
    if changes:
        written = await anyio.to_thread.run_sync(app.update_config, account_id, site_id, changes)
        await reads.caught_up(written.position)
    return await _config(reads, site_id, app.clock.now())


@router.post("/run_now", status_code=202, responses=ok(RunStatus, 202))
@traced.command("run_now")
async def run_now(
    site_id: SiteId, account_id: AccountId, services: ServicesDep, reads: ReadsDep
) -> Response:
    def start() -> Written:
        pending = services.content.pending_work(site_id)
        return services.app.start_run(account_id, site_id, pending)

    written = await anyio.to_thread.run_sync(start)
    await reads.caught_up(written.position)
    return json({"run_id": str(written.value.id), "status": "running"}, 202)


@router.get("/logs", responses=ok(Logs))
async def logs(
    run_id: RunId, reads: ReadsDep, lines: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    return json({"run_id": str(run_id), "lines": await reads.query(last_lines, run_id, lines)})


@router.get("/estimate", responses=ok(Estimate))
async def estimate(site_id: SiteId, account_id: AccountId, services: ServicesDep) -> Response:
    def compute() -> dict[str, Any]:
        pending = services.content.pending_work(site_id)
        return services.app.estimate(account_id, site_id, pending)

    return json(await anyio.to_thread.run_sync(compute))


@router.get("/pipeline_overview", responses=ok(PipelineOverview))
async def pipeline_overview(site_id: SiteId, services: ServicesDep) -> Response:
    counts = await anyio.to_thread.run_sync(services.content.counts, site_id)
    return json(overview(counts))


@router.get(
    "/current_processing",
    openapi_extra={"parameters": [query_id("run_id", required=False)]},
    responses=ok(CurrentProcessing),
)
async def current_processing(
    request: Request,
    site_id: SiteId,
    account_id: AccountId,
    reads: ReadsDep,
    services: ServicesDep,
) -> Response:
    asked_for = optional_uuid(request, "run_id")
    if asked_for is not None:
        await reads.owned_run(account_id, asked_for)  # 404 for a run not of this account
    body = await reads.query(current_run_body, site_id)
    run = loads(body) if body else None
    if run is None or (asked_for is not None and run["run_id"] != str(asked_for)):
        return json({"processing": None})
    stage = run["current_stage"]
    # Runs folded before several batches could be in flight have a single "batch".
    batches = run.get("batches") or ([run["batch"]] if run.get("batch") else [])
    in_hand = [i for b in batches if b["stage"] == stage for i in b["item_ids"]]

    def gather() -> tuple[int, list[dict[str, str]], list[dict[str, str]]]:
        if stage == int(Stage.REVIEW_GATE):
            return services.content.counts(site_id)[stage][0], [], []
        pending = services.content.counts(site_id)[stage][0]
        waiting = services.pipeline.pending_ids(site_id, stage, len(in_hand) + 5)
        next_ids = [i for i in waiting if i not in set(in_hand)][:5]
        return (
            pending,
            services.pipeline.titles(stage, in_hand),
            services.pipeline.titles(stage, next_ids),
        )

    pending, current_items, up_next = await anyio.to_thread.run_sync(gather)
    view = processing(run, pending, current_items, up_next, services.app.clock.now())
    return json({"processing": view})


async def _control(reads: ReadsDep, written: Written, run_id: UUID) -> Response:
    await reads.caught_up(written.position)
    return json({"run_id": str(run_id), "status": written.value})


@router.post("/pause", responses=ok(RunStatus))
@traced.command("pause")
async def pause(
    run_id: RunIdParam, account_id: AccountId, app: AppDep, reads: ReadsDep
) -> Response:
    return await _control(
        reads, await anyio.to_thread.run_sync(app.pause_run, account_id, run_id), run_id
    )


@router.post("/resume", responses=ok(RunStatus))
@traced.command("resume")
async def resume(
    run_id: RunIdParam, account_id: AccountId, app: AppDep, reads: ReadsDep
) -> Response:
    return await _control(
        reads, await anyio.to_thread.run_sync(app.resume_run, account_id, run_id), run_id
    )


@router.post("/cancel", responses=ok(RunStatus))
@traced.command("cancel")
async def cancel(
    run_id: RunIdParam, account_id: AccountId, app: AppDep, reads: ReadsDep
) -> Response:
    return await _control(
        reads, await anyio.to_thread.run_sync(app.cancel_run, account_id, run_id), run_id
    )


@router.get("/schedule_preview", responses=ok(SchedulePreview))
async def schedule_preview(
    site_id: SiteId,
    reads: ReadsDep,
    app: AppDep,
    count: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Response:
    stored = await reads.query(config_document, site_id)
    if stored is None:
        raise ApiError(404, "site_not_found", "site not found")
    schedule = Schedule.from_config(stored["config"], stored["timezone"])
    slots = schedule.upcoming(app.clock.now(), count)
    return json(
        {
            "site_id": str(site_id),
            "timezone": stored["timezone"],
            "fire_times": [
                {"local": slot.local(schedule.zone).isoformat(), "utc": iso(slot.fire_at)}
                for slot in slots
            ],
        }
    )
