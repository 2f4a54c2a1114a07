"""The application's notification log, read as decoded events for projections."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from projections.runtime import Notification


class ApplicationEventSource:
    def __init__(self, app: Application[Any]) -> None:
        self.app = app

    def read(self, after: int, limit: int) -> list[Notification]:
        notes = self.app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [Notification(n.id, n.topic, self.app.mapper.to_domain_event(n)) for n in notes]

    def last_position(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)
