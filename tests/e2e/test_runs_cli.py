"""``automation runs …`` against a running service, the CLI's one error format and exit
codes, and the typed client it uses held against the OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from automation.api.app import create_app
from automation.bootstrap import Services
from automation.client import Client
from tests.conftest import Api, RunningServer, free_port

# Stage 1 in six batches a second apart: time enough to pause and resume mid-run.
CONFIG = {
    "within_stage_delay": 1,
    "between_stage_delay": 0,
    "stage_1_batch_size": 2,
    **{f"stage_{n}_batch_size": 50 for n in range(2, 7)},
}


@pytest.fixture
def server(services: Services) -> Iterator[RunningServer]:
    with RunningServer(services, pipeline=True) as running:
        yield running


def cli(*args: str, token: str = "", url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATION_")}
    env |= {"AUTOMATION_TOKEN": token, "AUTOMATION_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "automation.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def answer(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def test_the_runs_cli_drives_a_run_from_start_to_end(server: RunningServer, api: Api) -> None:
    site = api.site()
    assert api.keywords(site, [f"trail shoe {n}" for n in range(12)]).status_code == 201
    assert api.put("/api/v1/automation/update_config", CONFIG, site_id=site).status_code == 200
    token = api.http.headers["Authorization"].removeprefix("Bearer ")

    def runs(*args: str) -> Any:
        return answer(cli("runs", *args, token=token, url=server.url))

    run_id = runs("start", site)["run_id"]
    assert runs("pause", run_id) == {"run_id": run_id, "status": "paused"}
    assert runs("show", run_id)["run"]["status"] == "paused"
    assert runs("resume", run_id)["status"] == "running"
    ended = runs("watch", run_id)
    assert ended["run_id"] == run_id
    assert ended["status"] == "completed"
    assert ended["total_credits_used"] > 0

    listed = runs("list")["runs"]
    assert [(r["run_id"], r["site_id"], r["status"]) for r in listed] == [
        (run_id, site, "completed")
    ]
    assert runs("list", "--site", site)["runs"][0]["run_id"] == run_id
    lines = runs("logs", run_id, "--lines", "3")["lines"]
    assert len(lines) == 3
    assert all(isinstance(line, str) and line for line in lines)
    table = cli("runs", "list", "--table", token=token, url=server.url)
    assert table.returncode == 0
    assert run_id[:6] in table.stdout


def test_refusals_and_usage_errors_are_one_json_object_with_their_exit_code(
    server: RunningServer, api: Api
) -> None:
    site = api.site()
    refused = cli("runs", "start", site, token="atk_wrong", url=server.url)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert orjson.loads(refused.stderr)["code"] == "not_authenticated"

    token = api.http.headers["Authorization"].removeprefix("Bearer ")
    nothing = cli(
        "runs", "pause", "00000000-0000-0000-0000-000000000000", token=token, url=server.url
    )
    assert nothing.returncode == 2
    assert orjson.loads(nothing.stderr)["code"] == "run_not_found"

    away = cli("runs", "list", token=token, url=f"http://127.0.0.1:{free_port()}")
    assert away.returncode == 3
    assert "did not answer" in orjson.loads(away.stderr)["error"]

    usage = cli("runs", "pause", token=token, url=server.url)
    assert usage.returncode == 2
    error = orjson.loads(usage.stderr)
    assert "run_id" in error["error"]
    assert error["usage"].startswith("usage: automation runs")

    no_token = cli("runs", "list", url=server.url)
    assert no_token.returncode == 2
    assert "AUTOMATION_TOKEN" in orjson.loads(no_token.stderr)["error"]


def test_version_help_and_a_closed_pipe() -> None:
    version = cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip()[0].isdigit()
    help_text = cli("serve", "--help").stdout
    assert "(default: 8000)" in help_text
    assert "AUTOMATION_DATA_DIR" in help_text
    assert "AUTOMATION_TOKEN" in cli("runs", "watch", "--help").stdout

    # A reader that has gone before the first line is written: no traceback, exit 0.
    with subprocess.Popen(
        [sys.executable, "-m", "automation.cli", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.close()
        stderr = child.stderr.read().decode()
        assert child.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr
    assert stderr == ""


def test_every_request_of_the_client_is_an_operation_of_the_openapi_document(
    services: Services,
) -> None:
    document = create_app(services).openapi()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    seen: set[tuple[str, str]] = set()

    def record(request: httpx.Request) -> httpx.Response:
        seen.add((request.method, request.url.path.replace(RUN, "{run_id}")))
        return httpx.Response(200, json={})

    client = Client("http://service", "atk_x")
    client._http = httpx.Client(base_url="http://service", transport=httpx.MockTransport(record))
    calls = {
        "list_sites": lambda: client.list_sites(),
        "history": lambda: client.history(SITE),
        "current_run": lambda: client.current_run(SITE),
        "processing": lambda: client.processing(SITE, RUN),
        "run_state": lambda: client.run_state(RUN),
        "run_now": lambda: client.run_now(SITE),
        "pause": lambda: client.pause(RUN),
        "resume": lambda: client.resume(RUN),
        "cancel": lambda: client.cancel(RUN),
        "logs": lambda: client.logs(RUN, 10),
        "stream": lambda: list(client.stream(RUN)),
    }
    public = {n for n in vars(Client) if not n.startswith("_") and n != "close"}
    assert public == set(calls), "each operation of the client is checked here"
    for call in calls.values():
        call()
    assert len(seen) == len(calls)
    assert seen <= operations, seen - operations


SITE = "11111111-1111-1111-1111-111111111111"
RUN = "22222222-2222-2222-2222-222222222222"


def test_each_operation_id_is_its_short_unique_name(services: Services) -> None:
    document = create_app(services).openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert {"run_now", "pause", "get_config", "update_config", "run_stream"} <= set(ids)
    for operation_id in ids:
        assert operation_id.isidentifier(), operation_id
        assert "api_v1" not in operation_id, operation_id
