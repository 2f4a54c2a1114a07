"""docker-compose.yml and its monitoring: every role health-checked and scraped, and the
dashboard drawing only metrics the service has."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

# Imported for what they register: every metric family the service defines.
import automation.adapters.run_metrics
import automation.api.metrics
import automation.readiness  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"api", "projector", "orchestrator", "worker", "relay", "scheduler"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_every_role_is_health_checked_on_its_readiness_endpoint() -> None:
    services = compose()["services"]
    assert set(services) >= ROLES
    for name in ROLES:
        check = services[name]["healthcheck"]
        assert not check.get("disable"), name
        port = "8000" if name == "api" else services[name]["environment"]["AUTOMATION_METRICS_PORT"]
        assert f"127.0.0.1:{port}/readyz" in " ".join(check["test"]), name


def test_prometheus_scrapes_every_role_and_is_off_by_default() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    scraped = {
        name: str(sd["port"])
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    assert scraped["api"] == "8000"
    for name in ROLES - {"api"}:
        assert scraped[name] == services[name]["environment"]["AUTOMATION_METRICS_PORT"]


def test_the_dashboard_draws_only_metrics_the_service_exposes() -> None:
    known = {
        sample
        for family in REGISTRY.collect()
        for sample in (family.name, f"{family.name}_total", f"{family.name}_bucket")
    }
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/automation.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bautomation_[a-z_]+", target["expr"])
    }
    assert len(used) >= 10
    assert used <= known, used - known
