"""Reading the service's Prometheus metrics in tests, and a small run to count."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

FAST = {"within_stage_delay": 0, "between_stage_delay": 0, "stage_1_batch_size": 5}
NAMES = (
    "automation_runs",
    "automation_run_duration_seconds",
    "automation_batch_duration_seconds",
    "automation_batches",
    "automation_ai_call_duration_seconds",
    "automation_ai_calls",
    "automation_credits_consumed",
    "automation_queue_depth",
    "automation_schedule_slots",
)


def samples(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def families(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {family.name for family in text_string_to_metric_families(text)}


def total(found: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def run_to_the_end(api: Api, keywords: int = 8) -> tuple[str, str]:
    site = api.site()
    assert api.keywords(site, [f"metric keyword {n}" for n in range(keywords)]).status_code == 201
    assert api.put("/api/v1/automation/update_config", FAST, site_id=site).status_code == 200
    answer = api.run_now(site)
    assert answer.status_code == 202, answer.text
    run_id = str(answer.json()["run_id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = api.get("/api/v1/automation/current_run", site_id=site).json()["run"]
        if run is None or run["status"] == "completed":
            history = api.get("/api/v1/automation/history", site_id=site).json()["runs"]
            assert history[0]["status"] == "completed"
            return site, run_id
        time.sleep(0.1)
    raise AssertionError("the run did not complete")
