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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError, Recording

from automation.application.ports import Clock, SystemClock
from automation.application.sealing import SEAL, seal
from automation.application.turns import KeyedLocks
from automation.domain.account import Account
from automation.domain.errors import AccountNotFoundError, NotFoundError, SiteNotFoundError
from automation.domain.run import AutomationRun
from automation.domain.site import Site

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
MAX_ATTEMPTS = 50
SEALS_KEPT = 50_000  # the last seal of recently saved runs; cleared when it grows past this


@dataclass(frozen=True)
class Written:
    """What a command returns: its answer and the log position of its last event,
    so readers can wait until the projections have caught up with it."""

    value: Any
    position: int


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event protocol check (a runtime-checkable
    Protocol's isinstance costs more than applying the event): every stored event here is
    a domain event of this package, which mutates its aggregate."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class AppBase(Application[UUID]):
    name = "automation"
    snapshotting_intervals = {Account: 200, Site: 200}

    def __init__(self, env: dict[str, str] | None = None, clock: Clock | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        # Called with the log position of every save, so in-process readers wake at once.
        self.listeners: list[Callable[[int], None]] = []
        # Called with the events of every save and the aggregates they belong to (metrics).
        self.saved_listeners: list[Callable[[list[Any], dict[UUID, Any]], None]] = []
        # (run id, version) -> that stored event's seal. A stored seal never changes, so
        # the next save of a run seals onto it without reading the event back.
        self._seals: dict[tuple[UUID, int], str] = {}
        # The current W3C trace context (as headers), recorded with a run's start and
        # resume so its batches continue the command's trace; set by the API (tracing.py).
        self.trace_context: Callable[[], dict[str, str]] = dict
        # This process's commands on one run take turns, rather than collide and retry.
        self.run_turns: KeyedLocks[UUID] = KeyedLocks()

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            position = recordings[-1].notification.id
            for listener in self.listeners:
                listener(position)

    def _get(
        self,
        kind: type[A],
        aggregate_id: UUID,
        missing: type[NotFoundError],
        *,
        to_change: bool = True,
    ) -> A:
        """Load an aggregate. Pass ``to_change=False`` only to read it: the cached object
        itself is returned, without the copy that keeps the cache safe from changes."""
        try:
            aggregate: Aggregate = self.repository.get(
                aggregate_id, projector_func=_project, deepcopy_from_cache=to_change
            )
        except AggregateNotFoundError:
            raise missing() from None
        if not isinstance(aggregate, kind):
            raise missing()
        return aggregate

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save atomically, sealing each run's new events onto its chain first."""
        heads: list[tuple[tuple[UUID, int], str]] = []
        for obj in objs:
            if isinstance(obj, AutomationRun) and obj.pending_events:
                heads.append(self._seal(obj))
        if all(isinstance(obj, Aggregate) for obj in objs):
            recordings = self._save_aggregates(objs, kwargs)
        else:
            recordings = super().save(*objs, **kwargs)
        if len(self._seals) > SEALS_KEPT:
            self._seals.clear()
        self._seals.update(heads)  # only once stored: a refused save leaves no head
        return recordings

    def _save_aggregates(
        self, aggregates: tuple[Aggregate, ...], kwargs: dict[str, Any]
    ) -> list[Recording[UUID]]:
        """``Application.save`` for aggregates, without its two runtime-checkable Protocol
        checks per aggregate (an isinstance against a Protocol walks its attributes, which
        cost as much as the rest of the save's bookkeeping)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        for listener in self.saved_listeners:
            listener(processing.events, processing.aggregates)
        return recordings

    def _seal(self, run: AutomationRun) -> tuple[tuple[UUID, int], str]:
        """Seal the run's new events; the key and seal of the last one."""
        pending = list(run.pending_events)
        first = pending[0].originator_version
        previous = ""
        if first > 1:
            known = self._seals.get((run.id, first - 1))
            if known is not None:
                previous = known
            else:
                stored = list(self.events.get(run.id, lte=first - 1, desc=True, limit=1))
                previous = str(getattr(stored[0], SEAL, "") or "") if stored else ""
        seal(pending, previous, self.mapper.transcoder)
        last = pending[-1]
        return (run.id, last.originator_version), str(getattr(last, SEAL))

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
