"""Prometheus metrics of runs, batches, AI calls, credits, the work queue and the schedule.

Most are counted from the events a process saves (``observe_saved``, a listener of the
application's saves): an event is saved once, by one process, so summing a metric over
every process of a deployment counts each run, batch and credit once. Durations that no
event holds (a batch's work, an AI call) are timed where the work happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Gauge, Histogram

from automation.domain.run import AutomationRun
from automation.domain.slot import ScheduledSlot

_LONG = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
_SHORT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RUNS = Counter("automation_runs_total", "Runs that ended", ["trigger", "outcome"])
RUN_SECONDS = Histogram(
    "automation_run_duration_seconds", "From a run's start to its end", buckets=_LONG
)
BATCHES = Counter("automation_batches_total", "Batches processed", ["stage", "outcome"])
BATCH_SECONDS = Histogram(
    "automation_batch_duration_seconds",
    "A stage worker's time on one batch",
    ["stage"],
    buckets=_SHORT,
)
AI_CALLS = Counter("automation_ai_calls_total", "Calls of the AI provider", ["provider", "outcome"])
AI_SECONDS = Histogram(
    "automation_ai_call_duration_seconds",
    "One call of the AI provider",
    ["provider"],
    buckets=_SHORT,
)
CREDITS = Counter("automation_credits_consumed_total", "Credits charged to accounts by runs")
QUEUE_DEPTH = Gauge("automation_queue_depth", "Work messages waiting in a queue", ["queue"])
SLOTS = Counter(
    "automation_schedule_slots_total", "Scheduled slots the scheduler handled", ["outcome"]
)

_OUTCOMES = {
    AutomationRun.RunCompleted: "completed",
    AutomationRun.RunFailed: "failed",
    AutomationRun.RunCancelled: "cancelled",
}


def observe_saved(events: Iterable[Any], aggregates: Mapping[UUID, Any]) -> None:
    """Counts what one save recorded: ended runs, completed batches, credits, slots."""
    for event in events:
        match event:
            case AutomationRun.CreditsConsumed(amount=amount):
                CREDITS.inc(amount)
            case AutomationRun.BatchCompleted(stage=stage):
                BATCHES.labels(str(stage), "completed").inc()
            case (
                AutomationRun.RunFailed()
                | AutomationRun.RunCompleted()
                | AutomationRun.RunCancelled()
            ):
                run = aggregates.get(event.originator_id)
                trigger = str(getattr(run, "trigger_type", "unknown"))
                RUNS.labels(trigger, _OUTCOMES[type(event)]).inc()
                if run is not None:
                    RUN_SECONDS.observe(max(0.0, (event.at - run.started_at).total_seconds()))
                if isinstance(event, AutomationRun.RunFailed) and run is not None:
                    BATCHES.labels(str(run.current_stage), "failed").inc()
            case ScheduledSlot.ScheduledSlotHandled(outcome=outcome, reason=reason):
                # started, missed (past the catch-up window) or skipped (for another reason)
                SLOTS.labels("missed" if reason == "missed" else outcome).inc()
            case _:
                pass
