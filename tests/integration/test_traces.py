"""One trace from ``run_now`` to the last batch: the request's span, the command's span
inside it, a span per batch in the workers continuing the command's context (recorded
with the run, carried in the work messages' headers) and a span per AI call inside its
batch; on the embedded default in one process, and across a separate worker process on
PostgreSQL and RabbitMQ (its spans written by the console exporter to a file)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from automation import tracing
from automation.bootstrap import Services, build
from automation.config import Settings
from tests.conftest import Api, RunningServer, settings_env

AUTOMATION = "/api/v1/automation"
FAST = {"within_stage_delay": 0, "between_stage_delay": 0, "stage_1_batch_size": 3}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"

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


def run_now_to_the_end(api: Api, keywords: int = 7) -> str:
    """Start a run with a caller's traceparent and wait until it has completed."""
    site = api.site()
    assert api.keywords(site, [f"trace keyword {n}" for n in range(keywords)]).status_code == 201
    assert api.put(f"{AUTOMATION}/update_config", FAST, site_id=site).status_code == 200
    answer = api.http.post(
        f"{AUTOMATION}/run_now",
        params={"site_id": site},
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
        if run is None:
            history = api.get(f"{AUTOMATION}/history", site_id=site).json()["runs"]
            assert history[0]["status"] == "completed", history[0]
            return str(answer.json()["run_id"])
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
        run_now_to_the_end(Api(server.url, token, str(account_id)))
    finished = [plain(s) for s in spans.get_finished_spans()]
    command = the_command(finished)
    check_worker_spans(command, finished)


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
