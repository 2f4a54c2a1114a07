"""configs: each site's automation config, its timezone, last run and last scheduled slot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from automation.domain.site import Site
from automation.domain.slot import ScheduledSlot
from projections.bulk import Bulk, TableRows
from projections.documents import dumps, loads
from projections.run_document import iso
from projections.runtime import Projection

# A change of any of these moves the schedule: slots before it are not owed.
SCHEDULE_FIELDS = (
    "is_enabled",
    "frequency",
    "scheduled_time",
    "scheduled_weekday",
    "scheduled_day_of_month",
)


class ConfigsProjection(Projection):
    name: ClassVar[str] = "configs"
    tables: ClassVar[Sequence[str]] = ("site_configs",)
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS site_configs ("
        "site_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, timezone TEXT NOT NULL, "
        "config TEXT NOT NULL, last_run_at TEXT, is_enabled INTEGER NOT NULL DEFAULT 0, "
        "schedule_changed_at TEXT NOT NULL, last_slot_at TEXT, last_slot TEXT)",
        "CREATE INDEX IF NOT EXISTS site_configs_enabled ON site_configs (is_enabled)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        kind = type(event)
        if kind is ScheduledSlot.ScheduledSlotHandled:
            fire_at, slot = _slot(event)
            # Slots of one site can be handled out of order (catch-up): keep the latest.
            tx.execute(
                "UPDATE site_configs SET last_slot_at = ?, last_slot = ? "
                "WHERE site_id = ? AND (last_slot_at IS NULL OR last_slot_at < ?)",
                (fire_at, slot, str(event.site_id), fire_at),
            )
            return
        if kind not in _SITE_CHANGES:
            return
        site_id = str(event.originator_id)
        if kind is Site.SiteRegistered:
            tx.execute(_INSERT, _registered(event))
        elif kind is Site.ConfigUpdated:
            found = tx.fetchone(
                "SELECT config, timezone, schedule_changed_at FROM site_configs WHERE site_id = ?",
                (site_id,),
            )
            if found is None:
                return
            tx.execute(
                "UPDATE site_configs SET config = ?, timezone = ?, is_enabled = ?, "
                "schedule_changed_at = ? WHERE site_id = ?",
                (*_updated(found[0], found[1], found[2], event), site_id),
            )
        elif kind is Site.RunAttached:
            tx.execute(
                "UPDATE site_configs SET last_run_at = ? WHERE site_id = ?",
                (iso(event.at), site_id),
            )

    def bulk(self) -> Bulk:
        return _ConfigsBulk()


COLUMNS = (
    "site_id",
    "account_id",
    "timezone",
    "config",
    "last_run_at",
    "is_enabled",
    "schedule_changed_at",
    "last_slot_at",
    "last_slot",
)
# The site's events that change its row.
_SITE_CHANGES = frozenset({Site.SiteRegistered, Site.ConfigUpdated, Site.RunAttached})
_TIMEZONE, _CONFIG, _LAST_RUN_AT, _ENABLED, _CHANGED_AT, _SLOT_AT, _SLOT = range(2, 9)
_INSERT = (
    f"INSERT INTO site_configs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


def _registered(event: Any) -> tuple[Any, ...]:
    """The row a SiteRegistered inserts, in the order of COLUMNS."""
    return (
        str(event.originator_id),
        str(event.account_id),
        event.timezone,
        dumps(event.config),
        None,
        int(bool(event.config.get("is_enabled"))),
        iso(event.at),
        None,
        None,
    )


def _updated(config: str, timezone: str, changed_at: str, event: Any) -> tuple[Any, ...]:
    """(config, timezone, is_enabled, schedule_changed_at) after a ConfigUpdated, from the
    stored config, timezone and schedule_changed_at."""
    old = loads(config)
    moved = timezone != event.timezone or any(
        old.get(f) != event.config.get(f) for f in SCHEDULE_FIELDS
    )
    return (
        dumps(event.config),
        event.timezone,
        int(bool(event.config.get("is_enabled"))),
        iso(event.at) if moved else changed_at,
    )


def _slot(event: Any) -> tuple[str | None, str]:
    """(last_slot_at, last_slot) of a ScheduledSlotHandled."""
    slot = {
        "slot": event.slot_key,
        "fire_at": iso(event.fire_at),
        "outcome": event.outcome,
        "reason": event.reason,
        "run_id": str(event.run_id) if event.run_id else None,
    }
    return iso(event.fire_at), dumps(slot)


class _ConfigsBulk(Bulk):
    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}  # site_id -> its row, in the order of COLUMNS

    def add(self, event: Any, position: int) -> None:
        kind = type(event)
        if kind is ScheduledSlot.ScheduledSlotHandled:
            row = self.rows.get(str(event.site_id))
            fire_at, slot = _slot(event)
            # The live path's SQL condition. Slot times are whole UTC seconds, so their ISO
            # texts share one shape, which every collation orders as Python does.
            if row is not None and (row[_SLOT_AT] is None or row[_SLOT_AT] < (fire_at or "")):
                row[_SLOT_AT], row[_SLOT] = fire_at, slot
            return
        if kind not in _SITE_CHANGES:
            return
        site_id = str(event.originator_id)
        if kind is Site.SiteRegistered:
            self.rows[site_id] = list(_registered(event))
            return
        row = self.rows.get(site_id)
        if row is None:
            return
        if kind is Site.ConfigUpdated:
            row[_CONFIG], row[_TIMEZONE], row[_ENABLED], row[_CHANGED_AT] = _updated(
                row[_CONFIG], row[_TIMEZONE], row[_CHANGED_AT], event
            )
        elif kind is Site.RunAttached:
            row[_LAST_RUN_AT] = iso(event.at)

    def finish(self) -> list[TableRows]:
        return [TableRows("site_configs", COLUMNS, [tuple(r) for r in self.rows.values()])]


def config_document(tx: Tx, site_id: UUID) -> dict[str, Any] | None:
    """The stored config of a site: ``{"config", "timezone", "last_run_at", "last_slot"}``."""
    row = tx.fetchone(
        "SELECT config, timezone, last_run_at, last_slot FROM site_configs WHERE site_id = ?",
        (str(site_id),),
    )
    if row is None:
        return None
    return {
        "config": loads(row[0]),
        "timezone": row[1],
        "last_run_at": row[2],
        "last_slot": loads(row[3]) if row[3] else None,
    }


@dataclass(frozen=True)
class ScheduledSite:
    site_id: UUID
    config: dict[str, Any]
    timezone: str
    # Slots at or before this instant are not owed: handled, or before the schedule was set.
    owed_after: datetime


def scheduled_sites(tx: Tx) -> list[ScheduledSite]:
    """Every site whose schedule is enabled."""
    rows = tx.fetchall(
        "SELECT site_id, config, timezone, schedule_changed_at, last_slot_at "
        "FROM site_configs WHERE is_enabled = 1"
    )
    return [
        ScheduledSite(
            UUID(r[0]), loads(r[1]), r[2], max(datetime.fromisoformat(t) for t in (r[3], r[4]) if t)
        )
        for r in rows
    ]
