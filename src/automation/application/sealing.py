"""Tamper evidence: every run event is sealed with a hash that covers its own stored state
and the previous event's hash, so altering, removing or reordering a stored event breaks
every seal after it.

The seal is an extra attribute of the event (``chain``), set just before the event is
saved. The library stores an event's attributes as they are and gives them back on load,
so the seal travels with the event without being part of the domain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Transcoder
from eventsourcing.utils import get_topic

SEAL = "chain"
_NOT_SEALED = ("originator_id", "originator_version", SEAL, "class_version")


def link(previous: str, topic: str, version: int, encoded_state: bytes) -> str:
    digest = hashlib.sha256()
    for part in (previous.encode(), topic.encode(), str(version).encode(), encoded_state):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _sealed_part(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in _NOT_SEALED}


def seal(events: list[Any], previous: str, transcoder: Transcoder) -> None:
    """Seal a run's new events in order, after the seal ``previous`` of the stored ones."""
    for event in events:
        encoded = transcoder.encode(_sealed_part(vars(event)))
        previous = link(previous, get_topic(type(event)), event.originator_version, encoded)
        object.__setattr__(event, SEAL, previous)


@dataclass(frozen=True)
class BrokenSeal:
    run_id: UUID
    version: int


def check(
    notifications: Iterator[Notification], transcoder: Transcoder, is_run_topic: Any
) -> list[BrokenSeal]:
    """Recompute every run's chain from the stored events; where a stored seal differs
    from the recomputed one, that event (or one before it) was altered."""
    previous: dict[UUID | str, str] = {}
    broken: list[BrokenSeal] = []
    failed: set[UUID | str] = set()
    for note in notifications:
        if not is_run_topic(note.topic) or note.originator_id in failed:
            continue
        state = transcoder.decode(note.state)
        stored = state.get(SEAL)
        if stored is None:  # written before runs were sealed: the chain starts after it
            previous[note.originator_id] = ""
            continue
        expected = link(
            previous.get(note.originator_id, ""),
            note.topic,
            note.originator_version,
            transcoder.encode(_sealed_part(state)),
        )
        if stored != expected:
            failed.add(note.originator_id)
            broken.append(BrokenSeal(UUID(str(note.originator_id)), note.originator_version))
            continue
        previous[note.originator_id] = stored
    return broken
