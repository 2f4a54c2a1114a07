"""The FastAPI application, built around already-wired services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from automation import tracing
from automation.api.body_limit import BodyLimit
from automation.api.edge import Edge
from automation.api.errors import install_error_handlers
from automation.api.metrics import MetricsMiddleware
from automation.api.openapi import install_openapi
from automation.api.reads import Reads
from automation.api.routes import (
    audit,
    automation,
    health,
    hot_reads,
    planner,
    run_pages,
    sites,
    writer,
)
from automation.api.streams import RunStreams
from automation.bootstrap import Services
from automation.console.mount import install_console

Hook = Callable[[], Awaitable[None]]


def create_app(
    services: Services, on_startup: Sequence[Hook] = (), on_shutdown: Sequence[Hook] = ()
) -> FastAPI:
    streams = RunStreams(services.projector.source)
    services.app.listeners.append(lambda _position: streams.wake_threadsafe())
    if services.wakeups is not None:
        services.wakeups.listeners.append(streams.wake_threadsafe)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await streams.start()
        for hook in on_startup:
            await hook()
        yield
        for hook in on_shutdown:
            await hook()
        await streams.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Automation runs",
        version="0.1.0",
        description="Configure, start, watch, pause, resume and cancel automation runs "
        "of the seven-stage content pipeline, per site.",
        docs_url=None,  # /docs and /redoc come from install_console, without a CDN
        redoc_url=None,
        # Each operation's id is its handler's name (run_now, get_config): short and
        # stable, so clients generated from the document read well.
        generate_unique_id_function=lambda route: route.name,
        # FastAPI's own spans: one per request (continuing a caller's traceparent) and
        # its operations; the provider is tracing.py's, None (off) unless it is set up.
        telemetry={"tracer_provider": tracing.provider(), "tracing": tracing.enabled()},
    )
    app.state.services = services
    app.state.reads = Reads(services)
    app.state.token_cache = {}
    app.state.streams = streams
    install_error_handlers(app)
    install_openapi(app)
    # The last added is the outermost: the metrics count every answer, the edge answers a
    # stranger before the body limit (or anything else) reads the request.
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(Edge, services=services, cache=app.state.token_cache)
    app.add_middleware(MetricsMiddleware)
    services.app.trace_context = tracing.carrier  # runs started here record their trace
    for module in (hot_reads, health, sites, planner, writer, automation, run_pages, audit):
        app.include_router(module.router)
    install_console(app)  # public: /, /console/*, /docs, /redoc (data stays under /api/v1/)
    return app
