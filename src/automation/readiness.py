"""Whether a process of the service is ready: its store, its bus, and the read models' lag.

Every role answers ``/readyz`` with this report: the API on its own port, the other roles on
``AUTOMATION_METRICS_PORT`` (see ``ops_server``).
"""

from __future__ import annotations

from prometheus_client import Gauge

from automation.bootstrap import Services
from projections.lag import lag_of

LAG_EVENTS = Gauge(
    "automation_projection_lag_events", "Events a read model has not applied yet", ["projection"]
)
LAG_SECONDS = Gauge(
    "automation_projection_lag_seconds",
    "How long the oldest event a read model has not applied has waited",
    ["projection"],
)


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
