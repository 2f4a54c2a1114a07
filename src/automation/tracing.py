"""Traces with OpenTelemetry: off unless ``OTEL_TRACES_EXPORTER`` names an exporter.

Off, no SDK is set up and every helper here returns at once (no span, not even the API's
no-op one), so tracing costs nothing measurable. On, ``setup`` installs the SDK's tracer
provider, which reads the standard variables itself (``OTEL_TRACES_SAMPLER``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``), as does the OTLP exporter
(``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, headers, timeout).

The trace context crosses processes as a W3C ``traceparent``/``tracestate`` carrier (a
plain ``dict[str, str]``): in HTTP headers, in the work messages' headers, in the run's
RunStarted/RunResumed events (whoever dispatches a run's batches continues the trace of
the command that started or resumed it) and in the published CloudEvents.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from automation.config import Settings

_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()

Attributes = Mapping[str, str | int | float | bool]
_OFF: AbstractContextManager[None] = nullcontext()


def enabled() -> bool:
    return _provider is not None


def provider() -> TracerProvider | None:
    """The SDK's provider when tracing is on (the API's own spans use it too)."""
    return _provider


def setup(settings: Settings, role: str) -> bool:
    """Install the SDK with the exporters ``OTEL_TRACES_EXPORTER`` names (``otlp`` over
    HTTP/protobuf, ``console``; ``none`` or unset: tracing stays off); whether it is on."""
    names = [n.strip() for n in settings.otel_traces_exporter.lower().split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if settings.otel_sdk_disabled or not names or _provider is not None:
        return enabled()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    # OTEL_RESOURCE_ATTRIBUTES is merged in by Resource.create.
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "automation.role": role}
    )
    provider = TracerProvider(resource=resource)
    for name in names:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            raise ValueError(f"unknown OTEL_TRACES_EXPORTER {name!r} (otlp, console, none)")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # for libraries that trace on their own
    install(provider)
    return True


def install(provider: TracerProvider) -> None:
    """Trace with ``provider`` (``setup``'s, or a test's own, left out of the global)."""
    global _provider, _tracer
    _provider, _tracer = provider, provider.get_tracer("automation")


def uninstall() -> None:
    """Tracing off again (a test's end)."""
    global _provider, _tracer
    _provider, _tracer = None, trace.NoOpTracer()


def shutdown() -> None:
    """Export the spans still buffered (a stopping process)."""
    if _provider is not None:
        _provider.force_flush()


def span(
    name: str,
    attributes: Attributes | None = None,
    parent: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> AbstractContextManager[Span | None]:
    """A span around the block, current within it; ``parent``: a carrier to continue
    (None: the current span's trace). Yields None when tracing is off."""
    if _provider is None:
        return _OFF  # shared and stateless: no generator, no span
    context = propagate.extract(parent) if parent is not None else None
    return _tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (empty when off or outside a span)."""
    if _provider is None:
        return {}
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def current_trace_id() -> str | None:
    """The active span's trace id (32 hex digits), for log lines."""
    if _provider is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
