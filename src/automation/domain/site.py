"""The Site aggregate: a website of an account, its configuration and its run lock.

The site's stream is where "one active run per site" is enforced: starting a run appends
``RunAttached`` to it, so two concurrent starts append the same version and the event
store lets only one of them commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from automation.domain.config import SiteConfig, check_timezone
from automation.domain.copying import FastCopy
from automation.domain.errors import InvalidValueError, RunInProgressError


class Site(FastCopy, Aggregate):
    INITIAL_VERSION = 1

    class SiteRegistered(Aggregate.Created):
        account_id: UUID
        name: str
        timezone: str
        config: dict[str, Any]
        at: datetime

    class ConfigUpdated(Aggregate.Event):
        config: dict[str, Any]
        timezone: str
        at: datetime

    class RunAttached(Aggregate.Event):
        run_id: UUID
        at: datetime

    class RunReleased(Aggregate.Event):
        run_id: UUID

    @classmethod
    def register(cls, account_id: UUID, name: str, timezone: str, at: datetime) -> Site:
        problems: dict[str, str] = {}
        tz_problem = check_timezone(timezone)
        if tz_problem:
            problems["timezone"] = tz_problem
        if not name.strip() or len(name.strip()) > 200:
            problems["name"] = "must be 1 to 200 characters"
        if problems:
            raise InvalidValueError(problems)
        return cls(
            account_id=account_id,
            name=name.strip(),
            timezone=timezone,
            config=SiteConfig().as_dict(),
            at=at,
        )

    @event(SiteRegistered)
    def __init__(
        self, *, account_id: UUID, name: str, timezone: str, config: dict[str, Any], at: datetime
    ) -> None:
        self.account_id = account_id
        self.name = name
        self.timezone = timezone
        self.config = config
        self.created_at = at
        self.active_run_id: UUID | None = None
        self.last_run_at: datetime | None = None

    @property
    def settings(self) -> SiteConfig:
        return SiteConfig.from_dict(self.config)

    def update_config(self, changes: dict[str, Any], at: datetime) -> None:
        """Apply a validated subset of config fields (and optionally ``timezone``)."""
        changes = dict(changes)
        timezone = changes.pop("timezone", self.timezone)
        problems: dict[str, str] = {}
        if "timezone" in changes or timezone != self.timezone:
            tz_problem = check_timezone(timezone)
            if tz_problem:
                problems["timezone"] = tz_problem
        try:
            new_config = self.settings.with_changes(changes)
        except InvalidValueError as error:
            problems.update(error.fields)
        if problems:
            raise InvalidValueError(problems)
        self._config_updated(config=new_config.as_dict(), timezone=timezone, at=at)

    def attach_run(self, run_id: UUID, at: datetime) -> None:
        if self.active_run_id is not None:
            raise RunInProgressError(
                "the site already has a running or paused run",
                {"run_id": str(self.active_run_id)},
            )
        self._run_attached(run_id=run_id, at=at)

    def release_run(self, run_id: UUID) -> None:
        if self.active_run_id == run_id:
            self._run_released(run_id=run_id)

    @event(ConfigUpdated)
    def _config_updated(self, config: dict[str, Any], timezone: str, at: datetime) -> None:
        self.config = config
        self.timezone = timezone

    @event(RunAttached)
    def _run_attached(self, run_id: UUID, at: datetime) -> None:
        self.active_run_id = run_id
        self.last_run_at = at

    @event(RunReleased)
    def _run_released(self, run_id: UUID) -> None:
        self.active_run_id = None
