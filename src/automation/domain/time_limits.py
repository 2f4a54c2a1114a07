"""When a run has outlived its config's time limits, and so is cancelled by the service."""

from __future__ import annotations

from datetime import datetime, timedelta

from automation.domain.config import SiteConfig
from automation.domain.run import AutomationRun
from automation.domain.values import RunStatus

HOUR = timedelta(hours=1)


def overdue(run: AutomationRun, now: datetime) -> str | None:
    """Why ``run`` is past its limits at ``now`` (the config it started with), if it is:
    paused longer than ``max_paused_hours``, or running longer than ``max_run_hours``."""
    if not run.is_active:
        return None
    config = SiteConfig.from_dict(run.config)
    paused_at = run.paused_at if run.status is RunStatus.PAUSED else None
    if paused_at is not None and now - paused_at > config.max_paused_hours * HOUR:
        return f"paused longer than max_paused_hours ({config.max_paused_hours})"
    limit = config.max_run_hours
    if limit is not None and now - run.started_at > limit * HOUR:
        return f"running longer than max_run_hours ({limit})"
    return None
