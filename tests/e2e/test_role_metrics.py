"""Run metrics: the API's /metrics after a run (both backends), and what every role's
/metrics names. Shared with tests/e2e/test_role_ports.py through tests/support/metrics.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automation.bootstrap import Services
from tests.conftest import Api, RunningServer
from tests.support.metrics import NAMES, families, run_to_the_end, samples, total


@pytest.fixture
def server(services: Services) -> Iterator[RunningServer]:
    with RunningServer(services, pipeline=True) as running:
        yield running


def test_a_run_shows_in_the_api_metrics(server: RunningServer, api: Api) -> None:
    before = samples(server.url)
    run_to_the_end(api)
    after = samples(server.url)
    assert set(NAMES) <= families(server.url)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("automation_runs_total", trigger="manual", outcome="completed") == 1
    assert grew("automation_run_duration_seconds_count") == 1
    assert grew("automation_credits_consumed_total") > 0
    assert grew("automation_batches_total", stage="1", outcome="completed") >= 2
    assert grew("automation_batch_duration_seconds_count", stage="4") >= 1
    # Stages 1, 2, 4, 5 and 6 call the provider (the local one by default) once an item.
    assert grew("automation_ai_calls_total", provider="local", outcome="ok") >= 5
    assert grew("automation_ai_call_duration_seconds_count", provider="local") >= 5
