"""/api/v1/automation/runs/{run_id}/…: a run's stored history, its state at any event,
and its events live as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import anyio.to_thread
import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from automation.api.answers import RunEvents, RunState, ok
from automation.api.deps import AccountId, AppDep
from automation.api.errors import invalid_request
from automation.api.params import STORE_INT_MAX
from automation.api.responses import json
from automation.api.streams import RunStreams
from automation.application.event_catalogue import TERMINAL_TYPES

router = APIRouter(prefix="/api/v1/automation/runs", tags=["audit"])

KEEP_ALIVE_SECONDS = 15.0

Version = Annotated[int, Query(ge=0, le=STORE_INT_MAX)]


def _run_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise invalid_request({"run_id": "must be a UUID"}) from None


@router.get("/{run_id}/events", responses=ok(RunEvents))
async def run_events(
    run_id: str,
    account_id: AccountId,
    app: AppDep,
    after_version: Version = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    run = _run_id(run_id)
    events = await anyio.to_thread.run_sync(app.run_events, account_id, run, after_version, limit)
    return json({"run_id": str(run), "events": events})


@router.get("/{run_id}/state", responses=ok(RunState))
async def run_state(
    run_id: str,
    account_id: AccountId,
    app: AppDep,
    version: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX)] = None,
) -> Response:
    run = _run_id(run_id)
    at, state = await anyio.to_thread.run_sync(app.run_state, account_id, run, version)
    return json({"run_id": str(run), "version": at, "run": state})


@router.get(
    "/{run_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"description": "server-sent events", "content": {"text/event-stream": {}}}},
)
async def run_stream(
    request: Request,
    run_id: str,
    account_id: AccountId,
    app: AppDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=STORE_INT_MAX)] = None,
    after_version: Version = 0,
) -> Response:
    """Each message: ``id`` the event's version (send it back as Last-Event-ID to resume),
    ``event`` its type, ``data`` the event as the events listing shows it."""
    run = _run_id(run_id)
    after = after_version if last_event_id is None else last_event_id
    streams: RunStreams = request.app.state.streams
    # Follow first, then read what is stored: nothing falls between the two (repeats are
    # dropped by version below). Ownership is checked by the read: a foreign run is a 404.
    live = streams.subscribe(run)
    try:
        stored = await anyio.to_thread.run_sync(app.run_events, account_id, run, after, 100_000)
        if not stored and after > 0:
            # Resuming after the run's last event: if that one ended the run, so does this.
            last = await anyio.to_thread.run_sync(app.run_events, account_id, run, after - 1, 1)
            if last and last[0]["type"] in TERMINAL_TYPES:
                streams.unsubscribe(run, live)
                return StreamingResponse(iter(()), media_type="text/event-stream")
    except BaseException:
        streams.unsubscribe(run, live)
        raise

    async def messages() -> AsyncIterator[bytes]:
        sent = after
        try:
            pending = list(stored)
            while True:
                for event in pending:
                    if event["version"] <= sent:
                        continue
                    sent = event["version"]
                    yield (
                        f"id: {sent}\nevent: {event['type']}\ndata: ".encode()
                        + orjson.dumps(event)
                        + b"\n\n"
                    )
                    if event["type"] in TERMINAL_TYPES:
                        return
                try:
                    pending = [await asyncio.wait_for(live.get(), KEEP_ALIVE_SECONDS)]
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    pending = []
                    yield b": keep-alive\n\n"
        finally:
            streams.unsubscribe(run, live)

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
