"""Reading a run's history as auditors see it: its stored events, and its state at any
of them. Reads the event store itself, never a read model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from automation.application.base import AppBase
from automation.application.event_catalogue import describe
from automation.application.sealing import BrokenSeal, check
from automation.domain.errors import InvalidValueError, RunNotFoundError
from automation.domain.events import event_classes
from automation.domain.run import AutomationRun
from projections.run_document import fold, public

# The stored topics of the run's event classes: seals are checked on runs' events only.
_RUN_TOPICS = frozenset(get_topic(kind) for kind in event_classes(AutomationRun))


class AuditQueries(AppBase):
    def broken_seals(self) -> list[BrokenSeal]:
        """Runs whose stored events no longer match their seals (see sealing.py)."""

        def notifications() -> Iterator[Notification]:
            after = 0
            while batch := self.recorder.select_notifications(
                start=after, limit=2000, inclusive_of_start=False
            ):
                yield from batch
                after = batch[-1].id

        return check(notifications(), self.mapper.transcoder, _RUN_TOPICS.__contains__)

    def _owned_run_events(self, account_id: UUID, run_id: UUID, **query: Any) -> list[Any]:
        try:
            first: Any = self.repository.get(run_id, version=1)
        except AggregateNotFoundError:
            raise RunNotFoundError() from None
        if not isinstance(first, AutomationRun) or first.account_id != account_id:
            raise RunNotFoundError()
        return list(self.events.get(run_id, **query))

    def run_events(
        self, account_id: UUID, run_id: UUID, after_version: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The run's stored events after ``after_version``, in order."""
        events = self._owned_run_events(account_id, run_id, gt=after_version, limit=limit)
        return [describe(event) for event in events]

    def run_state(
        self, account_id: UUID, run_id: UUID, version: int | None
    ) -> tuple[int, dict[str, Any]]:
        """The run as it stood after its event ``version`` (the latest when None), and the
        version that is."""
        if version is not None and version < 1:
            raise InvalidValueError({"version": "must be 1 or more"})
        events = self._owned_run_events(account_id, run_id, lte=version)
        if version is not None and events[-1].originator_version < version:
            raise InvalidValueError(
                {"version": f"the run has {events[-1].originator_version} events"}
            )
        doc: dict[str, Any] | None = None
        for event in events:
            doc = fold(doc, event)
        assert doc is not None
        return events[-1].originator_version, public(doc)
