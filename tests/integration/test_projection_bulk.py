"""A rebuild builds the views in memory (``Projection.bulk``) in one pass over the log; the
rows it writes must be exactly the rows the live projector wrote one event at a time."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.history
import projections.logs
import projections.rebuild
from automation.adapters.event_log import ApplicationEventSource
from automation.bootstrap import Services, all_projections
from automation.domain.estimate import PendingWork
from automation.domain.run import AutomationRun
from projections.current_run import CurrentRunProjection
from projections.history import HistoryProjection
from projections.logs import LogsProjection
from projections.rebuild import PASS, rebuild, verify
from projections.runtime import Projection, Projector
from projections.sites import SitesProjection

TABLES = (
    "sites",
    "site_configs",
    "current_runs",
    "run_history",
    "site_history",
    "run_logs",
    "site_slots",
)
BEGIN = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def snapshot(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    with services.views.read() as tx:
        return {
            t: sorted((tuple(r) for r in tx.fetchall(f"SELECT * FROM {t}")), key=repr)
            for t in TABLES
        }


class Maker:
    """Run streams made by the aggregate itself, with everything a run can record: stages,
    batches in and out of flight, charges, pauses, and every ending (or none yet)."""

    def __init__(self, rng: random.Random, account_id: uuid.UUID, sites: list[uuid.UUID]) -> None:
        self.rng = rng
        self.account_id = account_id
        self.sites = sites
        self.clock = BEGIN

    def tick(self) -> datetime:
        # Microseconds too, so that ISO texts of two shapes meet in the documents.
        self.clock += timedelta(
            seconds=self.rng.randint(1, 30), microseconds=self.rng.choice((0, 1500))
        )
        return self.clock

    def script(self) -> Iterator[AutomationRun]:
        """One run, yielded after each step, so that runs can be saved interleaved."""
        rng = self.rng
        run = AutomationRun(
            id=uuid.uuid4(),
            site_id=rng.choice(self.sites),
            account_id=self.account_id,
            trigger_type=rng.choice(("manual", "scheduled")),
            config={"stage_1_batch_size": rng.randint(1, 50)},
            estimated_credits=rng.randint(0, 500),
            reserved_credits=rng.randint(0, 600),
            estimate_basis={},
            at=self.tick(),
        )
        yield run
        ending = rng.choice(("completed", "cancelled", "failed", "running", "paused"))
        last = 7 if ending == "completed" else rng.randint(0, 6)
        for stage in range(1, last + 1):
            run.start_stage(stage, self.tick())
            yield run
            if stage == 7:
                run.pass_review_gate(rng.randint(0, 9), self.tick())
                yield run
                return
            for _ in range(rng.randint(0, 2)):
                if rng.random() < 0.2:
                    run.pause(self.tick())
                    yield run
                    run.resume(self.tick())
                # One or two batches in flight at once, finished in either order.
                numbers = []
                for _ in range(rng.randint(1, 2)):
                    items = [str(uuid.uuid4()) for _ in range(rng.randint(1, 3))]
                    numbers.append(run.dispatch_batch(stage, items, self.tick(), window=2))
                    yield run
                if stage == last and rng.random() < 0.5:
                    break  # left in flight
                rng.shuffle(numbers)
                for number in numbers:
                    count = rng.randint(0, 4)
                    outputs = [str(uuid.uuid4()) for _ in range(count)]
                    run.record_batch(
                        stage, number, 3, count, outputs, rng.randint(0, 40), self.tick()
                    )
                    yield run
            if (stage < last or rng.random() < 0.5) and not run.in_flight:
                run.complete_stage(stage, self.tick())
                yield run
        if rng.random() < 0.3:
            run.consume_credits(max(1, last), rng.randint(0, 9))
        if ending == "cancelled":
            run.cancel(self.tick())
        elif ending == "failed":
            run.fail("the AI provider answered 503", self.tick())
        elif ending == "paused":
            run.pause(self.tick())
        yield run


def fill(services: Services, seed: int, runs: int) -> None:
    """Sites with config changes, slots handled out of order, and ``runs`` runs saved step
    by step, interleaved: several are active at once on one site, where each new one takes
    the site's current_run row and the older one's later events find none."""
    app = services.app
    rng = random.Random(seed)
    account_id, _ = app.open_account("Acme", 1_000_000)
    sites = [app.register_site(account_id, f"Site {i}", "UTC").value.id for i in range(3)]
    app.update_config(account_id, sites[0], {"is_enabled": True, "scheduled_time": "09:30"})
    app.update_config(account_id, sites[1], {"timezone": "Europe/Berlin"})
    app.update_config(account_id, sites[1], {"stage_1_batch_size": 7})
    app.record_skipped_slot(sites[0], "2026-03-02", BEGIN + timedelta(days=1), "missed")
    app.record_skipped_slot(sites[0], "2026-03-01", BEGIN, "missed")  # older: not kept
    maker = Maker(rng, account_id, sites)
    scripts = [maker.script() for _ in range(runs)]
    while scripts:
        touched = []
        for script in rng.sample(scripts, min(len(scripts), rng.randint(1, 3))):
            run = next(script, None)
            if run is None:
                scripts.remove(script)
            elif run.pending_events:
                touched.append(run)
        if touched:
            app.save(*touched)
    # One through the application too: its RunAttached is what configs shows as last run.
    app.start_run(account_id, sites[2], PendingWork(keywords=3))


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), runs=st.integers(0, 30))
def test_a_bulk_rebuild_writes_the_rows_the_live_projector_wrote(
    services: Services, monkeypatch: pytest.MonkeyPatch, seed: int, runs: int
) -> None:
    # A short history, so that sites have more runs than their answer lists.
    monkeypatch.setattr(projections.history, "HISTORY_LENGTH", 4)
    fill(services, seed, runs)
    services.projector.catch_up()
    live = snapshot(services)
    source = ApplicationEventSource(services.app)
    assert verify(services.views, source, all_projections()) == []
    rebuild(services.views, source, all_projections())
    assert snapshot(services) == live
    last = source.last_position()
    assert services.projector.positions() == {p.name: last for p in all_projections()}


def through_apply(projection: Projection) -> Projection:
    """The same view without its bulk builder: rebuilt through apply_all(), chunk by chunk."""
    cls = type(projection)
    return type(f"{cls.__name__}ThroughApply", (cls,), {"bulk": lambda self: None})()


def test_views_with_and_without_a_bulk_builder_rebuild_together(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny chunks, so that log lines are written during the pass and rows in several parts.
    monkeypatch.setattr(projections.logs, "FLUSH_ROWS", 5)
    monkeypatch.setattr(projections.rebuild, "WRITE_CHUNK", 3)
    fill(services, 7, 12)
    services.projector.catch_up()
    live = snapshot(services)
    with services.views.write() as tx:
        for table in TABLES:
            tx.execute(f"DELETE FROM {table}")
    chosen = [p if p.name in ("sites", "logs") else through_apply(p) for p in all_projections()]
    reports: list[tuple[str, int, int]] = []
    source = ApplicationEventSource(services.app)
    rebuild(services.views, source, chosen, lambda *r: reports.append(r))
    assert snapshot(services) == live

    last = source.last_position()
    assert [r for r in reports if r[0] == PASS][-1] == (PASS, last, last)
    finals = {name: (done, total) for name, done, total in reports if name != PASS}
    assert finals["sites"] == (len(live["sites"]),) * 2
    assert finals["logs"] == (len(live["run_logs"]),) * 2
    assert finals["history"] == finals["current_run"] == (0, 0)  # written during the pass


def test_verify_checks_each_view_at_its_own_position(services: Services) -> None:
    fill(services, 11, 6)
    services.projector.catch_up()
    fill(services, 12, 6)  # only sites and logs follow these
    source = ApplicationEventSource(services.app)
    Projector(services.views, source, [SitesProjection(), LogsProjection()]).catch_up()
    positions = services.projector.positions()
    assert positions["logs"] > positions["history"]
    assert verify(services.views, source, all_projections()) == []

    with services.views.write() as tx:
        first_lines = tx.execute("DELETE FROM run_logs WHERE seq = 1")  # each run's start
        tx.execute("DELETE FROM current_runs")
    differences = verify(services.views, source, all_projections())
    assert {(d.view, d.table) for d in differences} == {
        ("logs", "run_logs"),
        ("current_run", "current_runs"),
    }
    logs = next(d for d in differences if d.table == "run_logs")
    assert not logs.only_live
    assert len(logs.only_rebuilt) == first_lines > 0
    rebuild(services.views, source, [CurrentRunProjection(), HistoryProjection(), LogsProjection()])
    assert verify(services.views, source, all_projections()) == []
