"""Prometheus metrics of HTTP requests, as a plain ASGI middleware (cheap per request)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "automation_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "automation_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled children, looked up once: labels() validates and locks on every call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route: Any = scope.get("route")
            # The route's template, not the raw path, so ids don't explode the label space.
            name = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            counter = self._counters.get((method, name, status))
            if counter is None:
                counter = self._counters[(method, name, status)] = REQUESTS.labels(
                    method, name, str(status)
                )
            timer = self._timers.get((method, name))
            if timer is None:
                timer = self._timers[(method, name)] = LATENCY.labels(method, name)
            counter.inc()
            timer.observe(time.perf_counter() - started)
