"""The run as readers see it: a JSON document folded from the run's events.

``current_run``, ``history`` and the audit time-travel all show this same document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from automation.domain.events import event_classes
from automation.domain.run import CANCEL_REQUESTED
from automation.domain.run import AutomationRun as Run
from automation.domain.values import STAGE_NAMES, Stage, StageStatus

# Readers match a run event by its class (``type(event)``: an exact lookup, as every stored
# event is of its declared class), so renaming or removing one fails the type check here.
RUN_EVENTS = event_classes(Run)
# The events that end a run, and the status each leaves.
ENDINGS: dict[type[Any], str] = {
    Run.RunCancelled: "cancelled",
    Run.RunCompleted: "completed",
    Run.RunFailed: "failed",
}


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def is_run_event(event: Any) -> bool:
    return type(event) in RUN_EVENTS


def new_document(event: Any) -> dict[str, Any]:
    return {
        "run_id": str(event.originator_id),
        "site_id": str(event.site_id),
        "status": "running",
        "trigger_type": event.trigger_type,
        "current_stage": int(Stage.KEYWORDS_TO_CLUSTERS),
        "started_at": iso(event.at),
        "paused_at": None,
        "pause_reason": None,
        "resumed_at": None,
        "completed_at": None,
        "total_credits_used": 0,
        "estimated_credits": event.estimated_credits,
        "reserved_credits": event.reserved_credits,
        "error": None,
        "version": event.originator_version,
        # The batches workers have now, in dispatch order: [{"stage", "batch", "item_ids"}].
        "batches": [],
        "stages": [
            {
                "stage": int(s),
                "name": STAGE_NAMES[s],
                "status": StageStatus.PENDING.value,
                "processed": 0,
                "created": 0,
                "credits_used": 0,
                "started_at": None,
                "completed_at": None,
            }
            for s in Stage
        ],
    }


def fold(doc: dict[str, Any] | None, event: Any) -> dict[str, Any] | None:
    """The document after ``event``; ``doc`` is None before the run's first event."""
    kind = type(event)
    if kind is Run.RunStarted:
        return new_document(event)
    if doc is None:
        return None
    doc = dict(doc)
    doc["version"] = event.originator_version
    match kind:  # the most frequent first
        case Run.BatchDispatched:
            doc.pop("batch", None)  # the single-batch field of documents folded before
            doc.setdefault("batches", []).append(
                {"stage": event.stage, "batch": event.batch, "item_ids": event.item_ids}
            )
        case Run.BatchCompleted:
            doc.pop("batch", None)
            done = (event.stage, event.batch)
            doc["batches"] = [b for b in doc.get("batches", []) if (b["stage"], b["batch"]) != done]
            entry = _stage(doc, event.stage)
            entry["processed"] += event.processed
            entry["created"] += event.created
        case Run.CreditsConsumed:
            _stage(doc, event.stage)["credits_used"] += event.amount
            doc["total_credits_used"] += event.amount
        case Run.StageStarted:
            doc["current_stage"] = event.stage
            _stage(doc, event.stage).update(
                status=StageStatus.RUNNING.value, started_at=iso(event.at)
            )
        case Run.StageCompleted:
            _stage(doc, event.stage).update(
                status=StageStatus.COMPLETED.value,
                processed=event.processed,
                created=event.created,
                completed_at=iso(event.at),
            )
        case Run.RunPaused:
            doc.update(status="paused", paused_at=iso(event.at), pause_reason=event.reason)
        case Run.RunResumed:
            doc.update(status="running", resumed_at=iso(event.at), pause_reason=None)
        case Run.ReservationToppedUp:
            doc["reserved_credits"] += event.amount
        case Run.RunCancelled | Run.RunCompleted | Run.RunFailed:
            doc.update(status=ENDINGS[kind], completed_at=iso(event.at))
            if kind is Run.RunFailed:
                doc["error"] = event.error
            elif kind is Run.RunCancelled and event.reason != CANCEL_REQUESTED:
                doc["error"] = f"cancelled by the service: {event.reason}"
    return doc


def _stage(doc: dict[str, Any], stage: int) -> dict[str, Any]:
    doc["stages"] = [dict(s) for s in doc["stages"]]
    entry: dict[str, Any] = doc["stages"][stage - 1]
    return entry


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract's shape of a run (internal bookkeeping fields removed)."""
    return {k: v for k, v in doc.items() if k != "version"}


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """A run as listed in ``history``."""
    keys = (
        "run_id",
        "status",
        "trigger_type",
        "started_at",
        "completed_at",
        "total_credits_used",
        "estimated_credits",
        "current_stage",
    )
    stages = doc["stages"]
    return {k: doc[k] for k in keys} | {
        "paused_at": doc["paused_at"],
        "resumed_at": doc["resumed_at"],
        "pause_reason": doc.get("pause_reason"),  # none in documents folded before reasons
        "processed": sum(s["processed"] for s in stages),
        "created": sum(s["created"] for s in stages),
    }
