"""Starting runs (manually or on schedule) and steering them: pause, resume, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from automation.application.ai import ProviderProfile
from automation.application.base import AppBase, Written
from automation.application.estimating import Estimator, Explained, Usage
from automation.application.sites import SiteCommands
from automation.application.usage import site_usage
from automation.domain.account import Account
from automation.domain.errors import (
    AccountNotFoundError,
    InsufficientCreditsError,
    RunInProgressError,
    RunNotFoundError,
    SiteNotFoundError,
)
from automation.domain.estimate import PendingWork, plan, required_credits
from automation.domain.run import AutomationRun
from automation.domain.site import Site
from automation.domain.slot import ScheduledSlot, scheduled_run_id, slot_id
from automation.domain.time_limits import overdue
from automation.domain.values import TriggerType


class RunCommands(SiteCommands, AppBase):
    # Set by the composition root; without one, estimates use the prior figures alone.
    estimator: Estimator | None = None

    def estimate(self, account_id: UUID, site_id: UUID, pending: PendingWork) -> dict[str, Any]:
        site = self.site(account_id, site_id)
        explained = self._explained(site, pending)
        estimated = explained.credits
        account = self._get(Account, account_id, AccountNotFoundError, to_change=False)
        balance = int(account.balance)
        required = required_credits(estimated)
        return {
            "estimated_credits": estimated,
            "required_credits": required,
            "current_balance": balance,
            "sufficient": balance >= required,
            "basis": explained.basis(),
        }

    def _explained(self, site: Site, pending: PendingWork) -> Explained:
        batch_size = site.settings.stage_1_batch_size
        if self.estimator is None:
            return Explained(plan(pending, batch_size), ProviderProfile("prior"))

        def usage() -> Usage:
            return site_usage(self.repository, self.events, site.id)

        return self.estimator.estimate(site.id, pending, batch_size, usage)

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
        explained = self._explained(site, pending)
        estimated = explained.credits
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
            estimate_basis=explained.basis(),
            at=now,
            trace=self.trace_context() or None,
        )
        return Written(run, self._save(site, account, run, *also))

    def run(self, account_id: UUID, run_id: UUID) -> AutomationRun:
        """A run of this account; any other is answered exactly like a missing one."""
        run = self._get(AutomationRun, run_id, RunNotFoundError)
        if run.account_id != account_id:
            raise RunNotFoundError()
        return run

    def pause_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.pause(self.clock.now()))

    def resume_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(
            account_id,
            run_id,
            lambda run: run.resume(self.clock.now(), self.trace_context() or None),
        )

    def cancel_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.cancel(self.clock.now()))

    def cancel_if_overdue(self, run_id: UUID) -> str | None:
        """Cancel the run if it has outlived its time limits (max_paused_hours,
        max_run_hours), freeing its site and credits; the reason, if it was cancelled."""

        def expire() -> str | None:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            reason = overdue(run, self.clock.now())
            if reason is not None:
                run.cancel(self.clock.now(), reason)
                self._save(*self._ending(run))
            return reason

        with self.run_turns(run_id):
            return self._retrying(expire)

    def complete_run(self, account_id: UUID, run_id: UUID) -> Written:
        return self._control(account_id, run_id, lambda run: run.complete(self.clock.now()))

    def fail_run(self, account_id: UUID, run_id: UUID, error: str) -> Written:
        return self._control(account_id, run_id, lambda run: run.fail(error, self.clock.now()))

    def _control(
        self, account_id: UUID, run_id: UUID, decide: Callable[[AutomationRun], None]
    ) -> Written:
        def control() -> Written:
            run = self.run(account_id, run_id)
            decide(run)
            return Written(run.status.value, self._save(*self._ending(run)))

        with self.run_turns(run_id):
            return self._retrying(control)
