"""Running the service's roles: all in one process, or one per process."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import uvicorn

from automation.api.app import create_app
from automation.bootstrap import Services, build
from automation.config import Settings


def _serve_http(settings: Settings, host: str, port: int, all_roles: bool) -> int:
    services = build(settings)
    if all_roles:
        services.projector.start()
        services.scheduler.start(settings.scheduler_interval)
    try:
        uvicorn.run(
            create_app(services),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    finally:
        services.close()
    return 0


def serve(settings: Settings, host: str, port: int) -> int:
    """Every role in one process: API and projector (and, as they land, the others)."""
    return _serve_http(settings, host, port, all_roles=True)


def api(settings: Settings, host: str, port: int) -> int:
    return _serve_http(settings, host, port, all_roles=False)


def _until_signalled(start: Callable[[Services], None]) -> int:
    services = build(Settings())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start(services)
    stop.wait()
    services.close()
    return 0


def projector(settings: Settings) -> int:
    """The projector alone: follows the event log into the read models."""
    return _until_signalled(lambda services: services.projector.start())


def scheduler(settings: Settings) -> int:
    """The scheduler alone: starts due scheduled runs (any number of copies is safe)."""
    return _until_signalled(lambda services: services.scheduler.start(settings.scheduler_interval))
