"""What each stored event is called outside the service, and what data it shows.

One table for everything that shows events to the outside: the CloudEvents relay
(routing keys, types) and the audit listing (names, data).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

_EVENT_ID_NS = uuid5(NAMESPACE_URL, "automation:event")

# Event class name -> routing key on the automation.events exchange.
ROUTING_KEYS: dict[str, str] = {
    "RunStarted": "run.started",
    "StageStarted": "run.stage_started",
    "StageCompleted": "run.stage_completed",
    "BatchDispatched": "run.batch_dispatched",
    "BatchCompleted": "run.batch_completed",
    "CreditsConsumed": "run.credits_consumed",
    "RunPaused": "run.paused",
    "RunResumed": "run.resumed",
    "RunCancelled": "run.cancelled",
    "RunCompleted": "run.completed",
    "RunFailed": "run.failed",
    "SiteRegistered": "site.registered",
    "ConfigUpdated": "config.updated",
    "RunAttached": "site.run_attached",
    "RunReleased": "site.run_released",
    "AccountOpened": "account.opened",
    "CreditsGranted": "account.credits_granted",
    "CreditsReserved": "account.credits_reserved",
    "CreditsCharged": "account.credits_charged",
    "ReservationReleased": "account.reservation_released",
    "TokenIssued": "account.token_issued",
    "ScheduledSlotHandled": "schedule.slot_handled",
}

# Fields never shown outside the store.
_PRIVATE_FIELDS = {"token_hash"}
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic", "chain"}


def event_name(event: Any) -> str:
    return type(event).__name__


def routing_key(event: Any) -> str:
    name = event_name(event)
    return ROUTING_KEYS.get(name, "other." + name.lower())


def cloud_event_type(event: Any) -> str:
    return f"automation.{routing_key(event)}.v1"


def event_id(originator_id: UUID, version: int) -> str:
    """A stored event's public id: the same for every reader and every redelivery."""
    return str(uuid5(_EVENT_ID_NS, f"{originator_id}/{version}"))


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields, as JSON-ready values."""
    return {
        key: _plain(value)
        for key, value in vars(event).items()
        if key not in _ENVELOPE_FIELDS and key not in _PRIVATE_FIELDS
    }


def describe(event: Any, position: int | None = None) -> dict[str, Any]:
    """The event as the audit listing and the live stream show it."""
    described = {
        "id": event_id(event.originator_id, event.originator_version),
        "version": event.originator_version,
        "type": event_name(event),
        "schema_version": getattr(type(event), "class_version", 1),
        "timestamp": iso(event.timestamp),
        "data": event_data(event),
    }
    if getattr(event, "chain", None):
        described["chain"] = event.chain  # the event's seal: see application/sealing.py
    if position is not None:
        described["sequence"] = position
    return described
