"""logs: a run's history as human-readable lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from automation.domain.run import AWAITING_CREDITS, CANCEL_REQUESTED
from automation.domain.run import AutomationRun as Run
from automation.domain.values import STAGE_NAMES, Stage
from projections.bulk import Bulk, TableRows
from projections.run_document import is_run_event, iso
from projections.runtime import Notification, Projection


def _stage(number: int) -> str:
    return f"Stage {number} ({STAGE_NAMES[Stage(number)]})"


def describe(event: Any) -> str | None:
    """One log line for a run event, or None for events that say nothing to a reader."""
    match type(event):  # the most frequent first
        case Run.BatchDispatched:
            return f"{_stage(event.stage)} batch {event.batch} started: {len(event.item_ids)} items"
        case Run.BatchCompleted:
            return (
                f"{_stage(event.stage)} batch {event.batch} done: {event.processed} processed, "
                f"{event.created} created, {event.credits} credits"
            )
        case Run.StageStarted:
            return f"{_stage(event.stage)} started"
        case Run.StageCompleted:
            return (
                f"{_stage(event.stage)} completed: {event.processed} processed, "
                f"{event.created} created"
            )
        case Run.RunStarted:
            return (
                f"Run started ({event.trigger_type}); estimated {event.estimated_credits} "
                f"credits, {event.reserved_credits} reserved"
            )
        case Run.RunPaused:
            if event.reason == AWAITING_CREDITS:
                return "Run paused: awaiting credits (grant credits, then resume)"
            return "Run paused"
        case Run.ReservationToppedUp:
            return f"Reservation topped up by {event.amount} credits from the free balance"
        case Run.RunResumed:
            return "Run resumed"
        case Run.RunCancelled:
            if event.reason != CANCEL_REQUESTED:
                return f"Run cancelled by the service: {event.reason}"
            return "Run cancelled"
        case Run.RunCompleted:
            return "Run completed"
        case Run.RunFailed:
            return f"Run failed: {event.error}"
    line = getattr(event, "log_line", None)
    return line() if callable(line) else None


class LogsProjection(Projection):
    name: ClassVar[str] = "logs"
    tables: ClassVar[Sequence[str]] = ("run_logs",)
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS run_logs ("
        "run_id TEXT NOT NULL, seq BIGINT NOT NULL, line TEXT NOT NULL, "
        "PRIMARY KEY (run_id, seq))",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        self.apply_all(tx, [Notification(position, "", event)])

    def apply_all(self, tx: Tx, notes: Sequence[Notification]) -> None:
        """The batch's lines, ``ROWS_PER_INSERT`` to a statement."""
        rows = [row for note in notes if (row := _row(note.event)) is not None]
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            tx.execute(
                "INSERT INTO run_logs (run_id, seq, line) VALUES "
                + ", ".join(["(?, ?, ?)"] * len(chunk)),
                [value for row in chunk for value in row],
            )

    def bulk(self) -> Bulk:
        return _LogsBulk()


COLUMNS = ("run_id", "seq", "line")
# Three parameters a row, under the 999 that SQLite builds before 3.32 allow a statement.
ROWS_PER_INSERT = 300
FLUSH_ROWS = 20_000  # lines a rebuild holds before handing them out to be written


def _row(event: Any) -> tuple[str, int, str] | None:
    """The run_logs row of an event, in the order of COLUMNS; None if it has no line."""
    if not is_run_event(event):
        return None
    text = describe(event)
    if text is None:
        return None
    at: datetime = getattr(event, "at", None) or event.timestamp
    return (str(event.originator_id), event.originator_version, f"{iso(at)} {text}")


class _LogsBulk(Bulk):
    """Lines are never changed once written, so they are handed out as they pile up."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, event: Any, position: int) -> None:
        row = _row(event)
        if row is not None:
            self.rows.append(row)

    def ready(self) -> list[TableRows]:
        return self.finish() if len(self.rows) >= FLUSH_ROWS else []

    def finish(self) -> list[TableRows]:
        rows, self.rows = self.rows, []
        return [TableRows("run_logs", COLUMNS, rows)]


def last_lines(tx: Tx, run_id: UUID, count: int) -> list[str]:
    rows = tx.fetchall(
        "SELECT line FROM run_logs WHERE run_id = ? ORDER BY seq DESC LIMIT ?",
        (str(run_id), count),
    )
    return [str(r[0]) for r in reversed(rows)]
