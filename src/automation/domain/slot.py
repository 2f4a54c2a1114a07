"""A scheduled slot of a site, once it has been handled: started, or skipped and why.

Its id is derived from the site and the slot's local date, so the event store admits one
``ScheduledSlotHandled`` per site and slot, however many schedulers race for it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid5(NAMESPACE_URL, "automation:scheduled-slot")

STARTED = "started"
SKIPPED = "skipped"


def slot_id(site_id: UUID, slot_key: str) -> UUID:
    return uuid5(_NAMESPACE, f"{site_id}/{slot_key}")


def scheduled_run_id(site_id: UUID, slot_key: str) -> UUID:
    """The run a slot starts: the same id for every scheduler that tries."""
    return uuid5(_NAMESPACE, f"{site_id}/{slot_key}/run")


class ScheduledSlot(Aggregate):
    INITIAL_VERSION = 1

    class ScheduledSlotHandled(Aggregate.Created):
        site_id: UUID
        slot_key: str
        fire_at: datetime
        outcome: str
        run_id: UUID | None
        reason: str | None
        at: datetime

    @staticmethod
    def create_id(site_id: UUID, slot_key: str, **_: object) -> UUID:
        return slot_id(site_id, slot_key)

    @event(ScheduledSlotHandled)
    def __init__(
        self,
        site_id: UUID,
        slot_key: str,
        fire_at: datetime,
        outcome: str,
        run_id: UUID | None,
        reason: str | None,
        at: datetime,
    ) -> None:
        self.site_id = site_id
        self.slot_key = slot_key
        self.fire_at = fire_at
        self.outcome = outcome
        self.run_id = run_id
        self.reason = reason
        self.handled_at = at

    @classmethod
    def started(
        cls, site_id: UUID, slot_key: str, fire_at: datetime, run_id: UUID, at: datetime
    ) -> ScheduledSlot:
        return cls(site_id, slot_key, fire_at, STARTED, run_id, None, at)

    @classmethod
    def skipped(
        cls, site_id: UUID, slot_key: str, fire_at: datetime, reason: str, at: datetime
    ) -> ScheduledSlot:
        return cls(site_id, slot_key, fire_at, SKIPPED, None, reason, at)
