"""The estimate's error, as a Prometheus histogram observed when a run completes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from prometheus_client import Histogram

from automation.domain.estimate import error_ratio
from automation.domain.run import AutomationRun

ESTIMATE_ERROR = Histogram(
    "automation_estimate_error_ratio",
    "Credits a completed run used over its estimate, minus 1 (0: exact; 0.1: 10% more)",
    buckets=(-0.5, -0.2, -0.1, -0.05, -0.02, -0.001, 0.001, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
)


def observe_estimates(events: Iterable[Any], aggregates: Mapping[UUID, Any]) -> None:
    """For each run a save completed: how far its estimate was from what it used."""
    for event in events:
        if isinstance(event, AutomationRun.RunCompleted):
            run = aggregates.get(event.originator_id)
            if isinstance(run, AutomationRun):
                ratio = error_ratio(run.estimated_credits, run.total_credits_used)
                if ratio is not None:
                    ESTIMATE_ERROR.observe(ratio)
