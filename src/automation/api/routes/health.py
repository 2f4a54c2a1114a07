"""Liveness, readiness and metrics: no authentication."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.responses import Response

from automation.api.answers import Health, Readiness, ok
from automation.api.deps import ServicesDep
from automation.api.responses import json
from automation.bootstrap import Services
from projections.lag import lag_of

router = APIRouter(tags=["operations"])

LAG_EVENTS = Gauge(
    "automation_projection_lag_events", "Events a read model has not applied yet", ["projection"]
)
LAG_SECONDS = Gauge(
    "automation_projection_lag_seconds",
    "How long the oldest event a read model has not applied has waited",
    ["projection"],
)


@router.get("/healthz", responses=ok(Health))
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
        lags = lag_of(
            services.projector.source, services.projector.positions(), services.app.clock.now()
        )
        for name, lag in lags.items():
            LAG_EVENTS.labels(name).set(lag.events)
            LAG_SECONDS.labels(name).set(lag.seconds)
        caught_up = max((lag.events for lag in lags.values()), default=0) <= (
            services.settings.ready_max_lag
        )
        checks["projections"] = {
            "ok": caught_up,
            "lag_events": {name: lag.events for name, lag in lags.items()},
            "lag_seconds": {name: lag.seconds for name, lag in lags.items()},
        }
        ready = caught_up
    except Exception as error:  # noqa: BLE001 - any failure means not ready, with its reason
        checks["projections"] = {"ok": False, "error": str(error)}
        ready = False
    if services.rabbit is None:
        checks["bus"] = {"ok": True, "kind": "in-process"}
    else:
        connected = services.rabbit.is_connected()
        checks["bus"] = {"ok": connected, "kind": "amqp"}
        ready = ready and connected
    return {"ready": ready, "checks": checks}


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
