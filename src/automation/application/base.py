"""The application's shared plumbing: loading, atomic saving, retrying on conflicts.

Each command loads what it needs, makes one domain decision, and saves every changed
aggregate in one atomic write. A version conflict means another writer got there first:
the command is tried again from fresh state, where the domain either decides the same
(for example a second run of one account reserving credits) or refuses (a second start
for a site that now has an active run).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError, Recording

from automation.application.ports import Clock, SystemClock
from automation.application.sealing import SEAL, seal
from automation.domain.account import Account
from automation.domain.errors import AccountNotFoundError, NotFoundError, SiteNotFoundError
from automation.domain.run import AutomationRun
from automation.domain.site import Site

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Written:
    """What a command returns: its answer and the log position of its last event,
    so readers can wait until the projections have caught up with it."""

    value: Any
    position: int


class AppBase(Application[UUID]):
    name = "automation"
    snapshotting_intervals = {Account: 200, Site: 200}

    def __init__(self, env: dict[str, str] | None = None, clock: Clock | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        # Called with the log position of every save, so in-process readers wake at once.
        self.listeners: list[Callable[[int], None]] = []

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            position = recordings[-1].notification.id
            for listener in self.listeners:
                listener(position)

    def _get(self, kind: type[A], aggregate_id: UUID, missing: type[NotFoundError]) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise missing() from None
        if not isinstance(aggregate, kind):
            raise missing()
        return aggregate

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save atomically, sealing each run's new events onto its chain first."""
        for obj in objs:
            if isinstance(obj, AutomationRun) and obj.pending_events:
                self._seal(obj)
        return super().save(*objs, **kwargs)

    def _seal(self, run: AutomationRun) -> None:
        first = run.pending_events[0].originator_version
        previous = ""
        if first > 1:
            stored = list(self.events.get(run.id, lte=first - 1, desc=True, limit=1))
            previous = str(getattr(stored[0], SEAL, "") or "") if stored else ""
        seal(list(run.pending_events), previous, self.mapper.transcoder)

    def _save(self, *aggregates: Aggregate) -> int:
        recordings = self.save(*aggregates)
        return max((r.notification.id for r in recordings), default=0)

    def _ending(self, run: AutomationRun, account: Account | None = None) -> list[Aggregate]:
        """The aggregates to save with ``run``: a run that has ended also frees its site
        and the rest of its credit reservation (on ``account``, if already loaded)."""
        if run.is_active:
            return [run] if account is None else [run, account]
        site = self._get(Site, run.site_id, SiteNotFoundError)
        account = account or self._get(Account, run.account_id, AccountNotFoundError)
        site.release_run(run.id)
        account.release(run.id)
        return [run, site, account]

    @staticmethod
    def _retrying(command: Callable[[], T]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return command()
            except RecordConflictError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise AssertionError("unreachable")
