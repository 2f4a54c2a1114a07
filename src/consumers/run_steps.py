"""When each running run's next step is due: the orchestrator's ``run_steps`` rows, moved
by the run's own events (see ``orchestrator.py``)."""

from __future__ import annotations

from typing import Any

from automation.adapters.sql import Tx
from automation.domain.run import AutomationRun as Run
from projections.run_document import ENDINGS, RUN_EVENTS

STEPS_DDL = (
    "CREATE TABLE IF NOT EXISTS run_steps ("
    "run_id TEXT PRIMARY KEY, due_at DOUBLE PRECISION, version BIGINT NOT NULL, "
    "within_delay DOUBLE PRECISION NOT NULL, between_delay DOUBLE PRECISION NOT NULL)"
)
# Events that set a run's next step; of several in a row only the last one counts.
_TIMING = frozenset(
    {Run.StageStarted, Run.RunResumed, Run.BatchDispatched, Run.BatchCompleted}
    | {Run.StageCompleted, Run.RunPaused}
)


def _set_due(tx: Tx, run_id: str, due_at: float | None) -> None:
    tx.execute(
        "UPDATE run_steps SET due_at = ?, version = version + 1 WHERE run_id = ?", (due_at, run_id)
    )


def react(tx: Tx, event: Any, watchdog: float) -> None:
    """How one run event moves its next step."""
    kind = type(event)
    if kind not in RUN_EVENTS:
        return
    run_id = str(event.originator_id)
    at = getattr(event, "at", None) or event.timestamp
    when = at.timestamp()
    match kind:
        case Run.RunStarted:
            tx.execute(
                "INSERT INTO run_steps (run_id, due_at, version, within_delay, between_delay) "
                "VALUES (?, ?, 1, ?, ?) ON CONFLICT (run_id) DO NOTHING",
                (
                    run_id,
                    when,
                    float(event.config.get("within_stage_delay", 0)),
                    float(event.config.get("between_stage_delay", 0)),
                ),
            )
        case Run.StageStarted | Run.RunResumed:
            _set_due(tx, run_id, when)
        case Run.BatchDispatched:
            _set_due(tx, run_id, when + watchdog)
        case Run.BatchCompleted:
            tx.execute(
                "UPDATE run_steps SET due_at = ? + within_delay, version = version + 1 "
                "WHERE run_id = ?",
                (when, run_id),
            )
        case Run.StageCompleted:
            tx.execute(
                "UPDATE run_steps SET due_at = ? + between_delay, version = version + 1 "
                "WHERE run_id = ?",
                (when, run_id),
            )
        case Run.RunPaused:
            _set_due(tx, run_id, None)
        case _ if kind in ENDINGS:
            tx.execute("DELETE FROM run_steps WHERE run_id = ?", (run_id,))


def react_all(tx: Tx, events: list[Any], watchdog: float) -> None:
    """What ``react`` does for each event in turn, in at most two statements per run.

    Each timing event replaces the run's next step outright, so only a run's last one
    matters (the version moves once, which is all a conditional settle needs to see).
    An ended run's row is deleted, whatever came before or after in the same read: a
    batch recorded after a cancel changes nothing, as its update would find no row."""
    started: dict[str, Any] = {}
    last: dict[str, Any] = {}
    ended: set[str] = set()
    for event in events:
        kind = type(event)
        if kind in _TIMING:  # the most frequent first
            last[str(event.originator_id)] = event
        elif kind is Run.RunStarted:
            started[str(event.originator_id)] = event
        elif kind in ENDINGS:
            ended.add(str(event.originator_id))
    for run_id, event in started.items():
        if run_id not in ended:
            react(tx, event, watchdog)
    for run_id, event in last.items():
        if run_id not in ended:
            react(tx, event, watchdog)
    for run_id in ended:
        tx.execute("DELETE FROM run_steps WHERE run_id = ?", (run_id,))
