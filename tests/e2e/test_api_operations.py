"""Operations endpoints: liveness, readiness, metrics and the API's own documentation."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import Api, RunningServer


def anonymous(server: RunningServer, path: str) -> httpx.Response:
    return httpx.get(server.url + path, timeout=10)


def requests_counted(metrics: str, method: str, route: str, status: str) -> float:
    """The value of automation_http_requests_total for one label set (0 when absent)."""
    total = 0.0
    for line in metrics.splitlines():
        if not line.startswith("automation_http_requests_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels == {"method": method, "route": route, "status": status}:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_healthz_answers_without_authentication(server: RunningServer) -> None:
    answer = anonymous(server, "/healthz")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")


def test_readyz_answers_json_without_authentication(server: RunningServer) -> None:
    answer = anonymous(server, "/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert isinstance(answer.json(), dict)


def test_metrics_count_requests_and_their_latency(server: RunningServer, api: Api) -> None:
    before = anonymous(server, "/metrics").text
    counted = requests_counted(before, "GET", "/api/v1/sites", "200")
    for _ in range(3):
        assert api.get("/api/v1/sites").status_code == 200
    answer = anonymous(server, "/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert "# TYPE automation_http_requests_total counter" in text
    assert requests_counted(text, "GET", "/api/v1/sites", "200") == counted + 3
    histograms = re.findall(r"^# TYPE (\S+) histogram$", text, flags=re.MULTILINE)
    assert histograms, "no latency histogram"
    assert any(
        f"{name}_bucket{{" in text and 'le="+Inf"' in text and f"{name}_count" in text
        for name in histograms
    )
    # Route templates, not raw ids, label the requests.
    assert re.search(r'route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}-', text) is None


def test_openapi_and_docs_answer(server: RunningServer) -> None:
    spec = anonymous(server, "/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in (
        "/api/v1/sites",
        "/api/v1/planner/keywords",
        "/api/v1/automation/run_now",
        "/api/v1/automation/update_config",
    ):
        assert path in paths, sorted(paths)
    docs = anonymous(server, "/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


def test_an_unknown_path_is_a_json_404_error(server: RunningServer, api: Api) -> None:
    for answer in (anonymous(server, "/no/such/path"), api.get("/api/v1/automation/nothing")):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        error = answer.json()["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)


def test_a_backing_service_failure_is_a_503_with_retry_after_never_a_500(
    api: Any, server: Any, monkeypatch: Any
) -> None:
    from eventsourcing.persistence import OperationalError

    site = api.site()
    run_id = api.run_now(site).json()["run_id"]

    def store_is_down(*_: object) -> None:
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(server.services.app, "pause_run", store_is_down)
    answer = api.post("/api/v1/automation/pause", run_id=run_id)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "unavailable"
    assert answer.headers["retry-after"] == "1"
