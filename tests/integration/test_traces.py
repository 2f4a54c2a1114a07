"""One trace from ``run_now`` to the last batch: the request's span, the command's span
inside it, a span per batch in the workers continuing the command's context (recorded
with the run, carried in the work messages' headers) and a span per AI call inside its
batch; on the embedded default in one process, and across a separate worker process on
PostgreSQL and RabbitMQ (its spans written by the console exporter to a file)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from automation import logs, tracing
from automation.bootstrap import Services, build
from automation.config import Settings
from consumers.relay import cloud_event
from tests.conftest import Api, RunningServer, settings_env

AUTOMATION = "/api/v1/automation"
FAST = {"within_stage_delay": 0, "between_stage_delay": 0, "stage_1_batch_size": 3}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
RESUME_TRACE = "0af7651916cd43dd8448eb211c80319c"


class Note(NamedTuple):
    event: Any
    position: int


# The API's provider can be set once per process; each test turns the helpers on and off.
_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    tracing.install(_PROVIDER)
    try:
        yield _EXPORTER
    finally:
        tracing.uninstall()


def traced_post(api: Api, command: str, trace: str = CALLER_TRACE, **params: str) -> str:
    """POST a command with a caller's traceparent; the run id it answers."""
    answer = api.http.post(
        f"{AUTOMATION}/{command}",
        params=params,
        headers={"traceparent": f"00-{trace}-{CALLER_SPAN}-01"},
    )
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["run_id"])


def run_now_to_the_end(
    api: Api, keywords: int = 7, config: dict[str, int] = FAST, resume_as: str | None = None
) -> str:
    """Start a run with a caller's traceparent and wait until it has completed; with
    ``resume_as``, pause it at once and resume it in that trace."""
    site = api.site()
    assert api.keywords(site, [f"trace keyword {n}" for n in range(keywords)]).status_code == 201
    assert api.put(f"{AUTOMATION}/update_config", config, site_id=site).status_code == 200
    run_id = traced_post(api, "run_now", site_id=site)
    if resume_as is not None:
        traced_post(api, "pause", run_id=run_id)
        traced_post(api, "resume", resume_as, run_id=run_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
        if run is None:
            history = api.get(f"{AUTOMATION}/history", site_id=site).json()["runs"]
            assert history[0]["status"] == "completed", history[0]
            return run_id
        time.sleep(0.1)
    raise AssertionError("the run did not complete")


def hexid(value: int | None, digits: int = 16) -> str | None:
    return None if value is None else format(value, f"0{digits}x")


def plain(span: ReadableSpan) -> dict[str, Any]:
    """A span as (name, trace, id, parent), in the console exporter's hex."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace": hexid(context.trace_id, 32),
        "id": hexid(context.span_id),
        "parent": hexid(span.parent.span_id) if span.parent else None,
        "attributes": dict(span.attributes or {}),
    }


def the_command(api_spans: list[dict[str, Any]]) -> dict[str, Any]:
    """The run_now command's span, checked: within FastAPI's span of the request, which
    continues the caller's trace."""
    (command,) = [s for s in api_spans if s["name"] == "command run_now"]
    by_id = {s["id"]: s for s in api_spans}
    request = command
    while request["parent"] in by_id:  # up through FastAPI's operation spans
        request = by_id[request["parent"]]
    assert request["name"] == "POST /api/v1/automation/run_now", request
    assert (request["trace"], request["parent"]) == (CALLER_TRACE, CALLER_SPAN)
    assert request["attributes"]["http.response.status_code"] == 202
    assert command["trace"] == CALLER_TRACE
    return command


def check_worker_spans(command: dict[str, Any], worker_spans: list[dict[str, Any]]) -> None:
    """Every batch of the run is a child of the command; every AI call of a batch."""
    batches = [s for s in worker_spans if s["name"] == "batch"]
    calls = [s for s in worker_spans if s["name"].startswith("ai ")]
    stages = {s["attributes"]["automation.stage"] for s in batches}
    assert stages == {1, 2, 3, 4, 5, 6}, stages  # every batch stage, refills included
    assert all(b["trace"] == CALLER_TRACE and b["parent"] == command["id"] for b in batches)
    batch_ids = {b["id"] for b in batches}
    assert calls
    assert all(c["trace"] == CALLER_TRACE and c["parent"] in batch_ids for c in calls)
    assert {c["name"] for c in calls} >= {"ai cluster_keywords", "ai write_article"}


def test_one_trace_runs_from_run_now_to_the_last_batch_in_one_process(
    services: Services, spans: InMemorySpanExporter
) -> None:
    with RunningServer(services, pipeline=True) as server:
        account_id, token = services.app.open_account("Acme", 1_000_000)
        run_id = run_now_to_the_end(Api(server.url, token, str(account_id)))
    finished = [plain(s) for s in spans.get_finished_spans()]
    command = the_command(finished)
    check_worker_spans(command, finished)
    # The run's start is published with the command's context; events without one, not.
    started, stage_started, *_ = services.app.events.get(UUID(run_id))
    published = [
        orjson.loads(cloud_event(Note(event, 1), (None, None)).body)
        for event in (started, stage_started)
    ]
    assert published[0]["traceparent"] == f"00-{CALLER_TRACE}-{command['id']}-01"
    assert "traceparent" not in published[1]


def test_a_resumed_run_continues_the_trace_of_its_resume(
    services: Services, spans: InMemorySpanExporter
) -> None:
    paced = FAST | {"between_stage_delay": 1}  # so that the pause comes before the end
    with RunningServer(services, pipeline=True) as server:
        account_id, token = services.app.open_account("Acme", 1_000_000)
        run_now_to_the_end(Api(server.url, token, str(account_id)), 4, paced, RESUME_TRACE)
    finished = [plain(s) for s in spans.get_finished_spans()]
    (resume,) = [s for s in finished if s["name"] == "command resume"]
    assert resume["trace"] == RESUME_TRACE
    batches = [s for s in finished if s["name"] == "batch"]
    last = max(batches, key=lambda b: b["attributes"]["automation.stage"])
    assert last["attributes"]["automation.stage"] == 6
    assert (last["trace"], last["parent"]) == (RESUME_TRACE, resume["id"])


def test_log_lines_name_the_active_trace(spans: InMemorySpanExporter) -> None:
    out, root = io.StringIO(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("worker", fmt="json", level="INFO")
    try:
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(out)
        with tracing.span("batch") as span:
            assert span is not None
            logging.getLogger("automation.test").info("inside")
        logging.getLogger("automation.test").info("outside")
    finally:
        root.handlers[:], root.level = handlers, level
    inside, outside = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in outside


def console_spans(path: Path) -> list[dict[str, Any]]:
    """The spans the console exporter wrote: JSON objects one after another."""
    text, found, at = path.read_text(), [], 0
    decoder = json.JSONDecoder()
    while (at := text.find("{", at)) >= 0:
        span, at = decoder.raw_decode(text, at)
        found.append(
            {
                "name": span["name"],
                "trace": span["context"]["trace_id"].removeprefix("0x"),
                "id": span["context"]["span_id"].removeprefix("0x"),
                "parent": (span["parent_id"] or "").removeprefix("0x") or None,
                "attributes": span["attributes"],
            }
        )
    return found


# The separate processes share the store on PostgreSQL.
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_separate_worker_process_continues_the_trace_of_run_now(
    rabbit_settings: Settings, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    services = build(rabbit_settings)
    env = settings_env(rabbit_settings)
    out = tmp_path / "worker-spans.json"
    traced = env | {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    children = [
        subprocess.Popen([sys.executable, "-m", "automation.cli", "orchestrator"], env=env),
        subprocess.Popen(
            [sys.executable, "-m", "automation.cli", "worker"], env=traced, stdout=out.open("w")
        ),
    ]
    try:
        with RunningServer(services) as server:
            account_id, token = services.app.open_account("Acme", 1_000_000)
            run_now_to_the_end(Api(server.url, token, str(account_id)))
        command = the_command([plain(s) for s in spans.get_finished_spans()])
    finally:
        for child in children:
            child.terminate()
        codes = [child.wait(timeout=60) for child in children]
        services.close()
    assert codes == [0, 0]
    check_worker_spans(command, console_spans(out))  # flushed at the worker's exit


def test_tracing_is_off_unless_an_exporter_is_named_and_an_unknown_one_is_refused() -> None:
    unset: dict[str, str] = {}
    none = {"OTEL_TRACES_EXPORTER": "none"}
    disabled = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    for env in (unset, none, disabled):
        assert not tracing.setup(Settings(**env), "worker")  # type: ignore[arg-type]
        assert tracing.provider() is None
        assert tracing.carrier() == {}
    with pytest.raises(ValidationError, match="OTEL_TRACES_EXPORTER"):
        Settings(OTEL_TRACES_EXPORTER="jaeger")  # type: ignore[call-arg]
