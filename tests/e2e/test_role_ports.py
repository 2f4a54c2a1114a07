"""A worker and an orchestrator process, each serving /metrics, /healthz and /readyz on
its own port (AUTOMATION_METRICS_PORT), with the worker's metrics counting the run it did."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from automation.bootstrap import Services, build
from automation.config import Settings
from tests.conftest import Api, RunningServer, free_port, settings_env
from tests.support.metrics import NAMES, families, run_to_the_end, samples, total


@pytest.fixture
def backend() -> str:
    return "postgres"  # separate role processes share one store on PostgreSQL


@pytest.fixture
def production(rabbit_settings: Settings) -> Iterator[tuple[Services, dict[str, str]]]:
    services = build(rabbit_settings)
    try:
        yield services, settings_env(rabbit_settings)
    finally:
        services.close()


def role(name: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "automation.cli", name],
        env=env | {"AUTOMATION_METRICS_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def answering(url: str) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_each_role_serves_its_metrics_and_health_on_its_own_port(
    production: tuple[Services, dict[str, str]],
) -> None:
    services, env = production
    ports = {"worker": free_port(), "orchestrator": free_port()}
    children = [role(name, env, port) for name, port in ports.items()]
    try:
        for port in ports.values():
            assert answering(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
            ready = answering(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["bus"] == {"ok": True, "kind": "amqp"}
            assert set(NAMES) <= families(f"http://127.0.0.1:{port}")
        worker = f"http://127.0.0.1:{ports['worker']}"
        before = samples(worker)
        with RunningServer(services) as server:
            account_id, token = services.app.open_account("Acme", 1_000_000)
            run_to_the_end(Api(server.url, token, str(account_id)))
        after = samples(worker)
        grew = {
            name: total(after, name) - total(before, name)
            for name in (
                "automation_batches_total",
                "automation_batch_duration_seconds_count",
                "automation_credits_consumed_total",
            )
        }
        assert all(value > 0 for value in grew.values()), grew
        # The worker reads the work queue's depth from the broker (empty once the run ended).
        assert after[("automation_queue_depth", (("queue", "stage_work"),))] >= 0
        assert httpx.get(f"{worker}/nowhere", timeout=5).status_code == 404
    finally:
        for child in children:
            child.terminate()
        for child in children:
            assert child.wait(timeout=60) == 0
