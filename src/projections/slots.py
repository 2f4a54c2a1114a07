"""slots: each site's scheduled slots as the scheduler handled them, newest first.

A slot is started (its run's id), skipped (and why: the site had a run, the account too few
credits) or missed (past the catch-up window). Listed by ``schedule_slots``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from automation.domain.slot import ScheduledSlot
from projections.bulk import Bulk, TableRows
from projections.documents import dumps
from projections.run_document import iso
from projections.runtime import Projection

COLUMNS = ("slot_id", "site_id", "seq", "body")


class SlotsProjection(Projection):
    name: ClassVar[str] = "slots"
    tables: ClassVar[Sequence[str]] = ("site_slots",)
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS site_slots ("
        "slot_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, seq BIGINT NOT NULL, "
        "body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS site_slots_site ON site_slots (site_id, seq)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        if type(event) is ScheduledSlot.ScheduledSlotHandled:
            tx.execute(
                "INSERT INTO site_slots (slot_id, site_id, seq, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (slot_id) DO NOTHING",
                _row(event, position),
            )

    def bulk(self) -> Bulk:
        return _SlotsBulk()


def _row(event: Any, position: int) -> tuple[str, str, int, str]:
    """A slot's row, in the order of COLUMNS."""
    outcome = "missed" if event.reason == "missed" else event.outcome
    body = {
        "slot": event.slot_key,
        "fire_at": iso(event.fire_at),
        "outcome": outcome,
        "reason": event.reason,
        "run_id": str(event.run_id) if event.run_id else None,
        "handled_at": iso(event.at),
    }
    return (str(event.originator_id), str(event.site_id), position, dumps(body))


class _SlotsBulk(Bulk):
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, int, str]] = {}

    def add(self, event: Any, position: int) -> None:
        if type(event) is ScheduledSlot.ScheduledSlotHandled:
            row = _row(event, position)
            self.rows.setdefault(row[0], row)

    def finish(self) -> list[TableRows]:
        return [TableRows("site_slots", COLUMNS, list(self.rows.values()))]


def slots_page(
    tx: Tx, site_id: UUID, limit: int, before: int | None
) -> tuple[list[str], int | None]:
    """Up to ``limit`` of the site's slots older than position ``before``, newest first,
    and the position to ask for the next page from (None: this was the last)."""
    rows = tx.fetchall(
        "SELECT seq, body FROM site_slots WHERE site_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        (str(site_id), before if before is not None else 2**62, limit + 1),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return [str(r[1]) for r in rows], (int(rows[-1][0]) if more and rows else None)
