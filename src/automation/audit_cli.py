"""``automation audit replay|export|import``: a run's history for auditors and operators.

``export`` writes the run's stored events as NDJSON, exactly as stored (topic and state), so
``import`` into an empty data dir reproduces the run as it was, event for event.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError, StoredEvent

from automation.application.event_catalogue import event_name, iso
from automation.bootstrap import build
from automation.config import Settings
from projections.run_document import fold, is_run_event


def _events(settings: Settings, run_id: UUID) -> tuple[list[Any], Any]:
    services = build(settings)
    events = [e for e in services.app.events.get(run_id) if is_run_event(e)]
    return events, services


def replay(settings: Settings, run_id: UUID, out: TextIO = sys.stdout) -> int:
    events, services = _events(settings, run_id)
    try:
        if not events:
            sys.stderr.write(f"no run {run_id}\n")
            return 2
        doc: dict[str, Any] | None = None
        for event in events:
            doc = fold(doc, event)
            assert doc is not None
            out.write(
                f"{event.originator_version:>4}  {iso(event.timestamp)}  "
                f"{event_name(event):<16} status={doc['status']} stage={doc['current_stage']} "
                f"credits={doc['total_credits_used']}\n"
            )
    finally:
        services.close()
    return 0


def export(settings: Settings, run_id: UUID, out: TextIO = sys.stdout) -> int:
    services = build(settings)
    try:
        stored = services.app.events.recorder.select_events(run_id)
        if not stored:
            sys.stderr.write(f"no run {run_id}\n")
            return 2
        for record in stored:
            out.write(
                orjson.dumps(
                    {
                        "originator_id": str(record.originator_id),
                        "originator_version": record.originator_version,
                        "topic": record.topic,
                        "state": orjson.loads(record.state),
                    }
                ).decode()
                + "\n"
            )
    finally:
        services.close()
    return 0


def import_(settings: Settings, source: TextIO = sys.stdin) -> int:
    records = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            records.append(
                StoredEvent(
                    originator_id=UUID(item["originator_id"]),
                    originator_version=int(item["originator_version"]),
                    topic=str(item["topic"]),
                    state=orjson.dumps(item["state"]),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            sys.stderr.write(f"line {number} is not an exported event: {error}\n")
            return 2
    services = build(settings)
    try:
        services.app.events.recorder.insert_events(records)
    except IntegrityError:
        sys.stderr.write("these events are already stored here; nothing was imported\n")
        return 1
    finally:
        services.close()
    sys.stdout.write(orjson.dumps({"imported": len(records)}).decode() + "\n")
    return 0
