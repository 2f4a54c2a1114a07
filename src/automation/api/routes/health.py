"""Liveness, readiness and metrics: no authentication."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from automation.api.deps import ServicesDep
from automation.api.responses import json
from automation.bootstrap import Services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Response:
    return json({"status": "ok"})


def readiness(services: Services) -> dict[str, object]:
    checks: dict[str, object] = {}
    ready = True
    try:
        last = services.app.recorder.max_notification_id() or 0
        checks["store"] = {"ok": True, "last_position": last}
    except Exception as error:  # noqa: BLE001 - any failure means not ready, with its reason
        checks["store"] = {"ok": False, "error": str(error)}
        return {"ready": False, "checks": checks}
    try:
        positions = services.projector.positions()
        lag = {name: last - position for name, position in positions.items()}
        checks["projections"] = {"ok": True, "lag_events": lag}
    except Exception as error:  # noqa: BLE001 - any failure means not ready, with its reason
        checks["projections"] = {"ok": False, "error": str(error)}
        ready = False
    checks["bus"] = {"ok": True, "kind": "amqp" if services.settings.amqp_url else "in-process"}
    return {"ready": ready, "checks": checks}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> Response:
    report = await anyio.to_thread.run_sync(readiness, services)
    return json(report, 200 if report["ready"] else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
