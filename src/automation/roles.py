"""Running the service's roles: all in one process, or one per process."""

from __future__ import annotations

import signal
import threading

import uvicorn

from automation.api.app import create_app
from automation.bootstrap import build
from automation.config import Settings


def _serve_http(settings: Settings, host: str, port: int, run_projector: bool) -> int:
    services = build(settings)
    if run_projector:
        services.projector.start()
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
    return _serve_http(settings, host, port, run_projector=True)


def api(settings: Settings, host: str, port: int) -> int:
    return _serve_http(settings, host, port, run_projector=False)


def projector(settings: Settings) -> int:
    services = build(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    services.projector.start()
    stop.wait()
    services.close()
    return 0
