"""The automation application: every command that changes an account, a site or a run.

Each method loads what it needs, makes one domain decision, and saves every changed
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
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError, Recording

from automation.application.ports import Clock, SystemClock
from automation.domain.account import Account
from automation.domain.errors import (
    AccountNotFoundError,
    InsufficientCreditsError,
    RunInProgressError,
    RunNotFoundError,
    SiteNotFoundError,
)
from automation.domain.estimate import PendingWork, estimate_credits, required_credits
from automation.domain.run import AutomationRun
from automation.domain.site import Site
from automation.domain.slot import ScheduledSlot, scheduled_run_id, slot_id
from automation.domain.token import ApiToken, hash_token, new_token
from automation.domain.values import TriggerType

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Written:
    """What a command returns: its answer and the log position of its last event,
    so readers can wait until the projections have caught up with it."""

    value: Any
    position: int


class AutomationApp(Application[UUID]):
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

    # --- accounts and tokens --------------------------------------------------------

    def open_account(self, name: str, credits: int = 0) -> tuple[UUID, str]:
        account = Account.open(name)
        if credits:
            account.grant(credits)
        token = new_token()
        self.save(account, ApiToken(hash_token(token), account.id))
        return account.id, token

    def issue_token(self, account_id: UUID) -> str:
        self._get(Account, account_id, AccountNotFoundError)
        token = new_token()
        self.save(ApiToken(hash_token(token), account_id))
        return token

    def grant_credits(self, account_id: UUID, amount: int) -> int:
        def grant() -> Written:
            account = self._get(Account, account_id, AccountNotFoundError)
            account.grant(amount)
            return Written(account.balance, self._save(account))

        return int(self._retrying(grant).value)

    def balance(self, account_id: UUID) -> int:
        return int(self._get(Account, account_id, AccountNotFoundError).balance)

    def authenticate(self, token: str) -> UUID | None:
        """The account a token belongs to, or None for an unknown token."""
        try:
            api_token: Aggregate = self.repository.get(ApiToken.id_for(token))
        except AggregateNotFoundError:
            return None
        if not isinstance(api_token, ApiToken) or not api_token.matches(token):
            return None
        return api_token.account_id

    # --- sites ------------------------------------------------------------------------

    def register_site(self, account_id: UUID, name: str, timezone: str) -> Written:
        site = Site.register(account_id, name, timezone, self.clock.now())
        return Written(site, self._save(site))

    def site(self, account_id: UUID, site_id: UUID) -> Site:
        site = self._get(Site, site_id, SiteNotFoundError)
        if site.account_id != account_id:
            raise SiteNotFoundError("site not found")
        return site

    def update_config(self, account_id: UUID, site_id: UUID, changes: dict[str, Any]) -> Written:
        def update() -> Written:
            site = self.site(account_id, site_id)
            site.update_config(changes, self.clock.now())
            return Written(site, self._save(site))

        return self._retrying(update)

    # --- runs -------------------------------------------------------------------------

    def estimate(self, account_id: UUID, site_id: UUID, pending: PendingWork) -> dict[str, Any]:
        site = self.site(account_id, site_id)
        estimated = estimate_credits(pending, site.settings.stage_1_batch_size)
        balance = self.balance(account_id)
        required = required_credits(estimated)
        return {
            "estimated_credits": estimated,
            "required_credits": required,
            "current_balance": balance,
            "sufficient": balance >= required,
        }

    def start_run(
        self,
        account_id: UUID,
        site_id: UUID,
        pending: PendingWork,
        trigger: TriggerType = TriggerType.MANUAL,
    ) -> Written:
        """Start a run: lock the site, reserve the credits, record RunStarted, atomically."""
        run_id = uuid4()

        def start() -> Written:
            site = self.site(account_id, site_id)
            return self._start(site, run_id, pending, trigger)

        return self._retrying(start)

    def start_scheduled_run(
        self, site_id: UUID, slot_key: str, fire_at: datetime, pending: PendingWork
    ) -> Written:
        """Start the run of a scheduled slot, or record why it could not start.

        The slot's aggregate is saved with the run (or alone, when skipped), so each slot
        is handled once however many schedulers try it; a slot already handled answers
        ``Written(None, 0)``.
        """
        run_id = scheduled_run_id(site_id, slot_key)

        def handle() -> Written:
            if slot_id(site_id, slot_key) in self.repository:
                return Written(None, 0)
            site = self._get(Site, site_id, SiteNotFoundError)
            now = self.clock.now()
            reason = None if site.settings.is_enabled else "site_disabled"
            if reason is None:
                slot = ScheduledSlot.started(site_id, slot_key, fire_at, run_id, now)
                try:
                    return self._start(site, run_id, pending, TriggerType.SCHEDULED, slot)
                except (RunInProgressError, InsufficientCreditsError) as refusal:
                    reason = refusal.code
            skipped = ScheduledSlot.skipped(site_id, slot_key, fire_at, reason, now)
            return Written(skipped, self._save(skipped))

        return self._retrying(handle)

    def record_skipped_slot(
        self, site_id: UUID, slot_key: str, fire_at: datetime, reason: str
    ) -> Written:
        """Record that a slot will not run (for example, missed during an outage)."""

        def record() -> Written:
            if slot_id(site_id, slot_key) in self.repository:
                return Written(None, 0)
            skipped = ScheduledSlot.skipped(site_id, slot_key, fire_at, reason, self.clock.now())
            return Written(skipped, self._save(skipped))

        return self._retrying(record)

    def _start(
        self,
        site: Site,
        run_id: UUID,
        pending: PendingWork,
        trigger: TriggerType,
        *also: Aggregate,
    ) -> Written:
        account = self._get(Account, site.account_id, AccountNotFoundError)
        now = self.clock.now()
        estimated = estimate_credits(pending, site.settings.stage_1_batch_size)
        required = required_credits(estimated)
        site.attach_run(run_id, now)
        account.reserve(run_id, required)
        run = AutomationRun(
            id=run_id,
            site_id=site.id,
            account_id=site.account_id,
            trigger_type=trigger.value,
            config=site.config,
            estimated_credits=estimated,
            reserved_credits=required,
            at=now,
        )
        return Written(run, self._save(site, account, run, *also))

    def run(self, account_id: UUID, run_id: UUID) -> AutomationRun:
        run = self._get(AutomationRun, run_id, RunNotFoundError)
        if run.account_id != account_id:
            raise RunNotFoundError("run not found")
        return run

    def pause_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.pause(self.clock.now()))

    def resume_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.resume(self.clock.now()))

    def cancel_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.cancel(self.clock.now()))

    def complete_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.complete(self.clock.now()))

    def fail_run(self, account_id: UUID, run_id: UUID, error: str) -> Written:
        return self._control(account_id, run_id, lambda run: run.fail(error, self.clock.now()))

    def _control(
        self, account_id: UUID, run_id: UUID, decide: Callable[[AutomationRun], None]
    ) -> Written:
        """One state change of a run; a run that ends also frees its site and credits."""

        def control() -> Written:
            run = self.run(account_id, run_id)
            decide(run)
            changed: list[Aggregate] = [run]
            if not run.is_active:
                site = self._get(Site, run.site_id, SiteNotFoundError)
                account = self._get(Account, run.account_id, AccountNotFoundError)
                site.release_run(run.id)
                account.release(run.id)
                changed += [site, account]
            return Written(run.status.value, self._save(*changed))

        return self._retrying(control)

    def owner_of(self, aggregate_id: UUID) -> tuple[UUID | None, UUID | None]:
        """(site_id, account_id) an aggregate belongs to, read from its first event."""
        first: Aggregate = self.repository.get(aggregate_id, version=1)
        if isinstance(first, Account):
            return None, first.id
        if isinstance(first, ApiToken):
            return None, first.account_id
        if isinstance(first, Site):
            return first.id, first.account_id
        if isinstance(first, AutomationRun):
            return first.site_id, first.account_id
        if isinstance(first, ScheduledSlot):
            return first.site_id, self.owner_of(first.site_id)[1]
        return None, None

    # --- plumbing ---------------------------------------------------------------------

    def _get(self, kind: type[A], aggregate_id: UUID, missing: type[Exception]) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise missing(f"{kind.__name__.lower()} not found") from None
        if not isinstance(aggregate, kind):
            raise missing(f"{kind.__name__.lower()} not found")
        return aggregate

    def _save(self, *aggregates: Aggregate) -> int:
        recordings = self.save(*aggregates)
        return max((r.notification.id for r in recordings), default=0)

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
