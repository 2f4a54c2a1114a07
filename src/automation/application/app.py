"""The automation application: every command that changes an account, a site or a run,
over one event store, so that commands can save several aggregates atomically."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from automation.application.accounts import AccountCommands
from automation.application.audit import AuditQueries
from automation.application.base import Written
from automation.application.pipeline import PipelineCommands
from automation.application.runs import RunCommands
from automation.domain.account import Account
from automation.domain.run import AutomationRun
from automation.domain.site import Site
from automation.domain.slot import ScheduledSlot
from automation.domain.token import ApiToken

__all__ = ["AutomationApp", "Written"]


class AutomationApp(AccountCommands, RunCommands, PipelineCommands, AuditQueries):
    name = "automation"

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
