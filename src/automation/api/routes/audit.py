"""/api/v1/automation/runs/{run_id}/…: a run's stored history, its state at any event,
and its events live as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from automation.api.deps import AccountId, AppDep
from automation.api.errors import invalid_request
from automation.api.responses import json
from projections.run_document import TERMINAL_EVENTS

router = APIRouter(prefix="/api/v1/automation/runs", tags=["audit"])

KEEP_ALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0


def _run_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise invalid_request({"run_id": "must be a UUID"}) from None


@router.get("/{run_id}/events")
async def run_events(
    run_id: str,
    account_id: AccountId,
    app: AppDep,
    after_version: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    run = _run_id(run_id)
    events = await anyio.to_thread.run_sync(app.run_events, account_id, run, after_version, limit)
    return json({"run_id": str(run), "events": events})


@router.get("/{run_id}/state")
async def run_state(
    run_id: str,
    account_id: AccountId,
    app: AppDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    run = _run_id(run_id)
    state = await anyio.to_thread.run_sync(app.run_state, account_id, run, version)
    return json({"run_id": str(run), "version": version, "run": state})


def _resume_point(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after_version")
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        raise invalid_request({"last_event_id": "must be an event version"}) from None
    if value < 0:
        raise invalid_request({"last_event_id": "must be an event version"})
    return value


@router.get("/{run_id}/stream")
async def run_stream(request: Request, run_id: str, account_id: AccountId, app: AppDep) -> Response:
    """Each message: ``id`` the event's version (send it back as Last-Event-ID to resume),
    ``event`` its type, ``data`` the event as the events listing shows it."""
    run = _run_id(run_id)
    after = _resume_point(request)
    # Ownership is checked before the stream opens, so a foreign run is a plain 404.
    first = await anyio.to_thread.run_sync(app.run_events, account_id, run, after, 1000)

    if not first and after > 0:
        # Resuming after the run's last event: if that one ended the run, so does the stream.
        last = await anyio.to_thread.run_sync(app.run_events, account_id, run, after - 1, 1)
        if last and last[0]["type"] in TERMINAL_EVENTS:
            return StreamingResponse(iter(()), media_type="text/event-stream")

    async def messages() -> AsyncIterator[bytes]:
        nonlocal after
        batch: list[dict[str, Any]] = first
        idle = 0.0
        while True:
            for event in batch:
                after = event["version"]
                yield (
                    f"id: {after}\nevent: {event['type']}\ndata: ".encode()
                    + orjson.dumps(event)
                    + b"\n\n"
                )
                if event["type"] in TERMINAL_EVENTS:
                    return
            if batch:
                idle = 0.0
            elif idle >= KEEP_ALIVE_SECONDS:
                idle = 0.0
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS if not batch else 0)
            idle += POLL_SECONDS if not batch else 0
            batch = await anyio.to_thread.run_sync(app.run_events, account_id, run, after, 1000)

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
