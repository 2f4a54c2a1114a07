"""What each stored event is called outside the service, and what data it shows.

One table for everything that shows events to the outside: the CloudEvents relay
(routing keys, types) and the audit listing and stream (names, data). It is keyed by the
event classes themselves, and it is the only place that spells an event's public name:
renaming a class fails the type check here, and leaves its published name as it was.
``tests/unit/test_event_catalogue.py`` checks that every event class of every aggregate is
here exactly once, and that the names are the documented ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

from automation.domain.account import Account
from automation.domain.run import AutomationRun as Run
from automation.domain.site import Site
from automation.domain.slot import ScheduledSlot
from automation.domain.token import ApiToken

_EVENT_ID_NS = uuid5(NAMESPACE_URL, "automation:event")


class Published(NamedTuple):
    name: str  # the ``type`` of the events listing and the stream
    routing_key: str  # on the automation.events exchange
    cloud_event_type: str  # the CloudEvents ``type``


def _as(name: str, routing_key: str) -> Published:
    return Published(name, routing_key, f"automation.{routing_key}.v1")


CATALOGUE: dict[type[Any], Published] = {
    Run.RunStarted: _as("RunStarted", "run.started"),
    Run.StageStarted: _as("StageStarted", "run.stage_started"),
    Run.StageCompleted: _as("StageCompleted", "run.stage_completed"),
    Run.BatchDispatched: _as("BatchDispatched", "run.batch_dispatched"),
    Run.BatchCompleted: _as("BatchCompleted", "run.batch_completed"),
    Run.CreditsConsumed: _as("CreditsConsumed", "run.credits_consumed"),
    Run.TokensUsed: _as("TokensUsed", "run.tokens_used"),
    Run.RunPaused: _as("RunPaused", "run.paused"),
    Run.ReservationToppedUp: _as("ReservationToppedUp", "run.reservation_topped_up"),
    Run.RunResumed: _as("RunResumed", "run.resumed"),
    Run.RunCancelled: _as("RunCancelled", "run.cancelled"),
    Run.RunCompleted: _as("RunCompleted", "run.completed"),
    Run.RunFailed: _as("RunFailed", "run.failed"),
    Site.SiteRegistered: _as("SiteRegistered", "site.registered"),
    Site.ConfigUpdated: _as("ConfigUpdated", "config.updated"),
    Site.RunAttached: _as("RunAttached", "site.run_attached"),
    Site.RunReleased: _as("RunReleased", "site.run_released"),
    Account.AccountOpened: _as("AccountOpened", "account.opened"),
    Account.CreditsGranted: _as("CreditsGranted", "account.credits_granted"),
    Account.CreditsReserved: _as("CreditsReserved", "account.credits_reserved"),
    Account.CreditsCharged: _as("CreditsCharged", "account.credits_charged"),
    Account.ReservationReleased: _as("ReservationReleased", "account.reservation_released"),
    ApiToken.TokenIssued: _as("TokenIssued", "account.token_issued"),
    ScheduledSlot.ScheduledSlotHandled: _as("ScheduledSlotHandled", "schedule.slot_handled"),
}

# The published names of the events that end a run: the stream stops after one of them.
TERMINAL_TYPES = frozenset(
    CATALOGUE[kind].name for kind in (Run.RunCompleted, Run.RunFailed, Run.RunCancelled)
)

# Fields never shown outside the store.
_PRIVATE_FIELDS = {"token_hash", "trace"}  # trace: published as CloudEvents attributes
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic", "chain"}


def published(event: Any) -> Published:
    """How ``event`` is shown outside. An event class missing from the table (the test
    above keeps that from happening) goes out as ``other.<its class name>``."""
    found = CATALOGUE.get(type(event))
    if found is None:
        name = type(event).__name__
        found = _as(name, "other." + name.lower())
    return found


def event_name(event: Any) -> str:
    return published(event).name


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
        "type": published(event).name,
        "schema_version": getattr(type(event), "class_version", 1),
        "timestamp": iso(event.timestamp),
        "data": event_data(event),
    }
    if getattr(event, "chain", None):
        described["chain"] = event.chain  # the event's seal: see application/sealing.py
    if position is not None:
        described["sequence"] = position
    return described
