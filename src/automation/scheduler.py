"""check_scheduled_automations: start every due scheduled run, once per site and slot.

Each tick looks at every enabled site, finds the slots it is owed since its last handled
slot (or since its schedule last changed), starts the latest one if it is within the
catch-up window, and records every other owed slot as skipped. Handling a slot goes
through ``AutomationApp.start_scheduled_run``, whose deterministic slot identity makes
concurrent schedulers safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from automation.adapters.sql import Database
from automation.application.app import AutomationApp
from automation.domain.estimate import PendingWork
from automation.domain.schedule import Schedule, Slot
from automation.domain.slot import SKIPPED
from projections.configs import ScheduledSite, scheduled_sites
from projections.current_run import active_run_ids

log = logging.getLogger(__name__)

# However long the outage, look back no further than this for owed slots.
LOOKBACK_LIMIT = timedelta(days=62)


@dataclass(frozen=True)
class TickReport:
    started: list[UUID]
    skipped: list[tuple[UUID, str, str]]  # (site_id, slot key, reason)


class Scheduler:
    def __init__(
        self,
        app: AutomationApp,
        views: Database,
        pending_work: Callable[[UUID], PendingWork],
        catch_up_window: timedelta = timedelta(hours=6),
    ) -> None:
        self.app = app
        self.views = views
        self.pending_work = pending_work
        self.catch_up_window = catch_up_window
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_scheduled_automations(self) -> TickReport:
        """One tick at the app clock's now: handle every owed slot of every enabled site."""
        now = self.app.clock.now()
        with self.views.read() as tx:
            sites = scheduled_sites(tx)
        report = TickReport([], [])
        for site in sites:
            try:
                self._handle_site(site, now, report)
            except Exception:
                log.exception(
                    "scheduling site %s failed; it is tried again next tick", site.site_id
                )
        return report

    def _handle_site(self, site: ScheduledSite, now: datetime, report: TickReport) -> None:
        schedule = Schedule.from_config(site.config, site.timezone)
        owed = schedule.slots_between(max(site.owed_after, now - LOOKBACK_LIMIT), now)
        if not owed:
            return
        *missed, latest = owed
        for slot in missed:
            self._skip(site.site_id, slot, "missed", report)
        if now - latest.fire_at > self.catch_up_window:
            self._skip(site.site_id, latest, "missed", report)
            return
        written = self.app.start_scheduled_run(
            site.site_id, latest.key, latest.fire_at, self.pending_work(site.site_id)
        )
        handled = written.value
        if handled is None:
            return  # another scheduler handled this slot first
        if getattr(handled, "outcome", None) == SKIPPED:
            log.warning(
                "scheduled run of site %s for %s not started: %s",
                site.site_id,
                latest.key,
                handled.reason,
            )
            report.skipped.append((site.site_id, latest.key, handled.reason))
        else:
            log.info(
                "scheduled run %s of site %s for %s started", handled.id, site.site_id, latest.key
            )
            report.started.append(handled.id)

    def _skip(self, site_id: UUID, slot: Slot, reason: str, report: TickReport) -> None:
        written = self.app.record_skipped_slot(site_id, slot.key, slot.fire_at, reason)
        if written.value is not None:
            log.warning("scheduled slot %s of site %s skipped: %s", slot.key, site_id, reason)
            report.skipped.append((site_id, slot.key, reason))

    def cancel_overdue_runs(self) -> list[tuple[UUID, str]]:
        """Cancel every run past its time limits (max_paused_hours, max_run_hours): each
        run cancelled, with why."""
        with self.views.read() as tx:
            active = active_run_ids(tx)
        cancelled = []
        for run_id in active:
            reason = self.app.cancel_if_overdue(run_id)
            if reason is not None:
                log.warning("run %s cancelled: %s", run_id, reason)
                cancelled.append((run_id, reason))
        return cancelled

    def start(self, interval: float = 15.0) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                for tick in (self.check_scheduled_automations, self.cancel_overdue_runs):
                    try:
                        tick()
                    except Exception:
                        log.exception("scheduler tick failed")
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
