"""What the live-progress reads show: the pipeline overview and the current batch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from automation.domain.values import STAGE_NAMES, Stage


def overview(counts: dict[int, tuple[int, int]]) -> dict[str, Any]:
    return {
        "stages": [
            {
                "stage": int(stage),
                "name": STAGE_NAMES[stage],
                "pending": counts[int(stage)][0],
                "done": counts[int(stage)][1],
            }
            for stage in Stage
        ]
    }


def processing(
    run: dict[str, Any],
    pending: int,
    current_items: list[dict[str, str]],
    up_next: list[dict[str, str]],
    now: datetime,
) -> dict[str, Any]:
    """The run's current stage: done so far, what is in hand, what comes next, and when
    the stage should finish at the rate observed since it started."""
    stage = run["stages"][run["current_stage"] - 1]
    processed = stage["processed"]
    total = processed + pending
    eta_seconds = None
    started = stage.get("started_at")
    if started and processed and pending:
        elapsed = (now - datetime.fromisoformat(started)).total_seconds()
        eta_seconds = round(elapsed / processed * pending, 1)
    return {
        "run_id": run["run_id"],
        "status": run["status"],
        "stage": run["current_stage"],
        "stage_name": stage["name"],
        "processed": processed,
        "total": total,
        "percent": round(100 * processed / total, 1) if total else 0.0,
        "current_items": current_items,
        "up_next": up_next,
        "eta_seconds": eta_seconds,
    }
