"""Running the service's roles: all in one process, or one per process.

The HTTP stack (FastAPI, uvicorn and the routes) is imported only by the roles that serve
HTTP: a worker, relay, orchestrator or projector process starts without it, about half a
second sooner on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from importlib.metadata import version

import uvloop

from automation.bootstrap import Services, build
from automation.config import Settings
from automation.ops_server import OpsServer
from consumers.runtime import BackgroundRoles, run_until_signalled

log = logging.getLogger("automation.roles")


def _ready(settings: Settings, serving: str) -> None:
    """The one line each role logs when it is ready: what, where, and on which backends."""
    log.info(
        "ready: automation %s %s; store: %s; bus: %s",
        version("automation-runs"),
        serving,
        settings.store_description(),
        settings.bus_description(),
    )


def _serve_http(services: Services, host: str, port: int, roles: BackgroundRoles, what: str) -> int:
    import uvicorn

    from automation.api.app import create_app

    async def ready() -> None:
        _ready(services.settings, f"{what} on http://{host}:{port}")

    try:
        uvicorn.run(
            create_app(services, on_startup=[roles.start, ready], on_shutdown=[roles.stop]),
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # the process's own logging (automation/logs.py) applies
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    finally:
        services.close()
    return 0


def serve(settings: Settings, host: str, port: int) -> int:
    """Every role in one process: API, projector, scheduler, relay and workers."""
    services = build(settings)
    services.start_following()
    services.projector.start()
    services.scheduler.start(settings.scheduler_interval)
    roles = BackgroundRoles(services, relay=True, orchestrator=True, workers=True)
    return _serve_http(services, host, port, roles, "serve: every role, the API")


def api(settings: Settings, host: str, port: int) -> int:
    """The HTTP API alone (any number of copies)."""
    services = build(settings)
    # On PostgreSQL: LISTEN, so commands learn from the projectors' NOTIFY when the read
    # models show them, and live streams hear of new events, without polling.
    services.start_following()
    return _serve_http(services, host, port, BackgroundRoles(services), "api: the HTTP API")


def _ops(settings: Settings, services: Services) -> OpsServer | None:
    """The role's /metrics, /healthz and /readyz, where AUTOMATION_METRICS_PORT asks."""
    if settings.metrics_port is None:
        return None
    return OpsServer(services, settings.metrics_host, settings.metrics_port).start()


def _until_signalled(settings: Settings, role: str, start: Callable[[Services], None]) -> int:
    services = build(settings)
    services.start_following()
    ops = _ops(settings, services)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start(services)
    _ready(settings, role)
    stop.wait()
    if ops is not None:
        ops.stop()
    services.close()
    return 0


def projector(settings: Settings) -> int:
    """The projector alone: follows the event log into the read models."""
    return _until_signalled(
        settings, "projector: the read models", lambda services: services.projector.start()
    )


def scheduler(settings: Settings) -> int:
    """The scheduler alone: starts due scheduled runs (any number of copies is safe)."""
    return _until_signalled(
        settings,
        "scheduler: scheduled runs",
        lambda services: services.scheduler.start(settings.scheduler_interval),
    )


def _async_role(settings: Settings, role: str, **roles: bool) -> int:
    services = build(settings)
    services.start_following()
    ops = _ops(settings, services)
    try:
        # The event loop `serve` runs its roles on (uvicorn's uvloop): less of the
        # process's time goes to the broker's frames and to handing work to threads.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(
                run_until_signalled(
                    BackgroundRoles(services, **roles), ready=lambda: _ready(settings, role)
                )
            )
    finally:
        if ops is not None:
            ops.stop()
        services.close()
    return 0


def relay(settings: Settings) -> int:
    """The relay alone: publishes stored events as CloudEvents (more copies stand by)."""
    if not settings.amqp_url:
        raise SystemExit("the relay needs AMQP_URL: there is no exchange to publish to")
    return _async_role(settings, "relay: CloudEvents to the events exchange", relay=True)


def orchestrator(settings: Settings) -> int:
    """The orchestrator alone: dispatches batches and stages (copies are safe)."""
    if not settings.amqp_url:
        raise SystemExit("a separate orchestrator needs AMQP_URL to reach the workers")
    return _async_role(settings, "orchestrator: batches and stages", orchestrator=True)


def worker(settings: Settings) -> int:
    """A stage worker: processes batches from the work queue (as many copies as needed)."""
    if not settings.amqp_url:
        raise SystemExit("a separate worker needs AMQP_URL to receive work")
    return _async_role(settings, "worker: stage batches", workers=True)
