"""Liveness, readiness and metrics: no authentication."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from automation.api.answers import Health, Readiness, ok
from automation.api.deps import ServicesDep
from automation.api.responses import json
from automation.readiness import readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses=ok(Health))
async def healthz() -> Response:
    return json({"status": "ok"})


@router.get(
    "/readyz",
    responses={
        **ok(Readiness),
        503: {
            "description": "not ready: the same report (a failing check has ok false)",
            "model": Readiness,
        },
    },
)
async def readyz(services: ServicesDep) -> Response:
    report = await anyio.to_thread.run_sync(readiness, services)
    return json(report, 200 if report["ready"] else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(services: ServicesDep) -> Response:
    # The lag gauges are read fresh for each scrape.
    await anyio.to_thread.run_sync(readiness, services)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
