"""``/metrics``, ``/healthz`` and ``/readyz`` of a role without an HTTP API of its own.

The projector, scheduler, relay, orchestrator and worker processes serve these on
``AUTOMATION_METRICS_PORT`` when it is set, so that Prometheus can scrape every role and an
orchestrator (compose, Kubernetes) can health-check it. The standard library's threaded
server is enough for a scrape every few seconds and keeps the roles free of the HTTP stack.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from automation.bootstrap import Services
from automation.readiness import readiness

log = logging.getLogger(__name__)


class OpsServer:
    """The three operations endpoints on ``host:port``, in a daemon thread."""

    def __init__(self, services: Services, host: str, port: int) -> None:
        handler = _handler(services)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ops-server", daemon=True
        )

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(services: Services) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "application/json", b'{"status":"ok"}')
            elif path == "/readyz":
                report = readiness(services)
                self._send(
                    200 if report["ready"] else 503, "application/json", orjson.dumps(report)
                )
            elif path == "/metrics":
                readiness(services)  # the lag gauges are read fresh for each scrape
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._send(
                    404,
                    "application/json",
                    b'{"error":{"code":"not_found","message":"no such path"}}',
                )

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not worth a log line each."""

    return Handler
