"""The projections benchmark: rebuilding the read models, and their lag behind the log.

Everything runs in this process on PostgreSQL (``BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``) in a fresh schema ``bench_proj_<hex>``,
dropped at the end. The service is wired by ``automation.bootstrap.build``.

1. **Rebuild speed.** The store is filled with at least 200,000 events: run streams made in
   memory by the real ``AutomationRun`` (started, stages, batches, charges, pauses; then
   completed, cancelled or failed) and saved a few hundred runs per ``app.save`` (one
   transaction each, with the service's sealing, mapping and recorder), plus an account
   and a few sites registered by the application's commands. Then, on the same log:
   the baseline, reading and decoding it (``ApplicationEventSource.read(after, 2000)`` in a
   loop), and ``projections.rebuild.rebuild`` of every view (``all_projections()``). A
   rebuild reads the log once and hands each event to every view, which folds it in memory
   (``Projection.bulk``), holding no lock; then it claims the views' positions and each
   view's rows are written (COPY). Its progress reports split it into phases: the pass
   (reading and decoding, timed per read; the rest is folding), each view's writing, and
   the catch-up with the commit; ``held_s`` is the time the positions were claimed, which
   is what the live projector waits. The headline, ``ratio_applied_to_read``, is still
   (events x views) / rebuild seconds / read-and-decode events/s.
2. **Projection lag.** The projector follows the log in its thread (``start_following()``,
   ``projector.start(poll_interval=1.0)``) while one thread appends at a steady rate
   (``pause_run`` / ``resume_run`` on a set of running runs, one event per command, on a
   fixed schedule); each event's lag is the time its position was reported by
   ``projector.on_progress`` (every view committed) minus the time its command returned.
"""

from __future__ import annotations

import bisect
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from automation.adapters.event_log import ApplicationEventSource
from automation.application.app import AutomationApp
from automation.bootstrap import Services, all_projections, build
from automation.config import Settings as ServiceSettings
from automation.domain.config import SiteConfig
from automation.domain.estimate import PendingWork, estimate_credits, required_credits
from automation.domain.run import AutomationRun
from bench.read_endpoints import Settings
from projections.rebuild import PASS, rebuild
from projections.runtime import EventSource, Notification

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "projections.json"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

# Targets the project tracks (reported, never asserted).
TARGET_REBUILD_RATIO = 0.3  # events applied/s per view >= 0.3 x read-and-decode events/s
TARGET_LAG_P99_MS = 20.0  # p99 projection lag at LAG_RATE events/s

MIN_EVENTS = 200_000  # the run is invalid with fewer stored events
FILL_EVENTS = 205_000  # run streams are made until this many events are stored
RUNS_PER_SAVE = 250  # runs per app.save (one transaction)
SITES = 50  # 130 runs per site; see the README on why this number matters
READ_CHUNK = 2000
SEED = 20240601
CREDITS = 10**15
PENDING = PendingWork(keywords=50)
CONFIG = SiteConfig().as_dict()

LAG_RATE = 200.0  # commands (= events) per second
LAG_WARMUP_S = 2.0  # at the same rate, not recorded
LAG_SECONDS = 15.0
LAG_RUNS = SITES  # one running run per site, paused and resumed in turn
LAG_SETTLE_S = 10.0  # how long the projector may take to catch up after the last command


class Invalid(RuntimeError):
    """The run cannot be trusted: an error, a miscount, a view that did not catch up."""


def _log(message: str) -> None:
    sys.stderr.write(f"[bench projections] {message}\n")
    sys.stderr.flush()


def _percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


# --- part 1: filling the store -----------------------------------------------------------


# Items a batch takes at each stage (SiteConfig's default batch sizes), what one input
# yields, and credits per input (docs/credits.md); stage 3 calls no AI.
BATCH_ITEMS = {s: SiteConfig().batch_size(s) for s in range(1, 7)}
YIELD = {1: 0.2, 2: 2.0, 3: 1.0, 4: 1.0, 5: 2.0, 6: 1.0}
CREDITS_PER_ITEM = {1: 0, 2: 2, 3: 0, 4: 10, 5: 1, 6: 3}


class RunMaker:
    """Run streams made by the real aggregate, with a seeded mix of outcomes."""

    def __init__(self, account_id: uuid.UUID, site_ids: Sequence[uuid.UUID]) -> None:
        self.rng = random.Random(SEED)
        self.account_id = account_id
        self.site_ids = list(site_ids)
        self.ids = [str(uuid.uuid4()) for _ in range(4000)]
        self.clock = datetime.now(UTC) - timedelta(days=90)
        self.made = 0
        self.outcomes = {"completed": 0, "cancelled": 0, "failed": 0}

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.uniform(0.5, 20))
        return self.clock

    def _items(self, count: int) -> list[str]:
        start = self.rng.randrange(len(self.ids) - count)
        return self.ids[start : start + count]

    def make(self) -> AutomationRun:
        rng = self.rng
        site_id = self.site_ids[self.made % len(self.site_ids)]
        self.made += 1
        estimated = estimate_credits(PendingWork(keywords=rng.choice((20, 40, 60))))
        run = AutomationRun(
            id=uuid.uuid4(),
            site_id=site_id,
            account_id=self.account_id,
            trigger_type="manual" if rng.random() < 0.6 else "scheduled",
            config=dict(CONFIG),
            estimated_credits=estimated,
            reserved_credits=required_credits(estimated),
            estimate_basis={},
            at=self._tick(),
        )
        roll = rng.random()
        outcome = "completed" if roll < 0.8 else "cancelled" if roll < 0.92 else "failed"
        last_stage = 6 if outcome == "completed" else rng.randint(1, 6)
        pause_stage = rng.randint(1, 6) if rng.random() < 0.25 else 0
        for stage in range(1, last_stage + 1):
            run.start_stage(stage, self._tick())
            if stage == pause_stage:
                run.pause(self._tick())
                run.resume(self._tick())
            ending_here = outcome != "completed" and stage == last_stage
            batches = 1 if ending_here else rng.choice((1, 1, 1, 2))
            for _ in range(batches):
                items = self._items(BATCH_ITEMS[stage])
                number = run.dispatch_batch(stage, items, self._tick())
                if ending_here:
                    break  # cancelled or failed with this batch in flight
                created = max(1, round(len(items) * YIELD[stage]))
                run.record_batch(
                    stage,
                    number,
                    processed=len(items),
                    created=created,
                    output_ids=self._items(created),
                    credits=len(items) * CREDITS_PER_ITEM[stage],
                    at=self._tick(),
                )
            if ending_here:
                break
            run.complete_stage(stage, self._tick())
        if outcome == "completed":
            run.start_stage(7, self._tick())
            run.pass_review_gate(rng.randint(1, 8), self._tick())
        elif outcome == "cancelled":
            run.cancel(self._tick())
        else:
            run.fail("the AI provider answered 503 five times", self._tick())
        self.outcomes[outcome] += 1
        self.clock += timedelta(minutes=rng.uniform(5, 60))
        return run


@dataclass
class Fill:
    account_id: uuid.UUID
    site_ids: list[uuid.UUID]
    events: int  # every event stored (the log's length)
    run_events: int
    runs: int
    saves: int
    seconds: float
    outcomes: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "run_events": self.run_events,
            "runs": self.runs,
            "events_per_run": round(self.run_events / self.runs, 1) if self.runs else None,
            "outcomes": self.outcomes,
            "sites": len(self.site_ids),
            "saves": self.saves,
            "runs_per_save": RUNS_PER_SAVE,
            "seconds": round(self.seconds, 2),
            "run_events_per_s": _rate(self.run_events, self.seconds),
        }


def _fill(app: AutomationApp) -> Fill:
    account_id, _ = app.open_account("bench projections", CREDITS)
    site_ids = [
        app.register_site(account_id, f"bench site {i}", "UTC").value.id for i in range(SITES)
    ]
    for site_id in site_ids[::4]:  # a few config changes, for the configs view
        app.update_config(account_id, site_id, {"stage_1_batch_size": 25})
    maker = RunMaker(account_id, site_ids)
    run_events = saves = 0
    began = time.perf_counter()
    while (app.recorder.max_notification_id() or 0) < FILL_EVENTS:
        runs = [maker.make() for _ in range(RUNS_PER_SAVE)]
        expected = sum(len(r.pending_events) for r in runs)
        recordings = app.save(*runs)
        if len(recordings) != expected:
            raise Invalid(f"a save recorded {len(recordings)} events of {expected}")
        run_events += expected
        saves += 1
        if saves % 10 == 0:
            _log(f"filled {run_events} run events in {time.perf_counter() - began:.1f} s")
    seconds = time.perf_counter() - began
    events = int(app.recorder.max_notification_id() or 0)
    return Fill(
        account_id, site_ids, events, run_events, maker.made, saves, seconds, maker.outcomes
    )


def _count_rows(schema: str, table: str) -> int:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


# --- part 1: reading and rebuilding ------------------------------------------------------


@dataclass
class ReadCall:
    began: float
    ended: float
    count: int


class TimedSource:
    """An EventSource that records how long each read (select + decode) took; one
    perf_counter pair per call of up to 2,000 events, so it costs nothing measurable."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self.calls: list[ReadCall] = []

    def read(self, after: int, limit: int) -> list[Notification]:
        began = time.perf_counter()
        notes = self.source.read(after, limit)
        self.calls.append(ReadCall(began, time.perf_counter(), len(notes)))
        return notes

    def last_position(self) -> int:
        return self.source.last_position()


def _select_only(app: AutomationApp) -> tuple[int, float]:
    """The log's notifications without decoding them: (count, seconds)."""
    after = count = 0
    began = time.perf_counter()
    while True:
        notes = app.recorder.select_notifications(
            start=after, limit=READ_CHUNK, inclusive_of_start=False
        )
        if not notes:
            return count, time.perf_counter() - began
        count += len(notes)
        after = notes[-1].id


def _read_and_decode(source: EventSource) -> tuple[int, float]:
    """The log read and decoded as projections get it: (count, seconds)."""
    after = count = 0
    began = time.perf_counter()
    while True:
        notes = source.read(after, READ_CHUNK)
        if not notes:
            return count, time.perf_counter() - began
        count += len(notes)
        after = notes[-1].position


def _rebuild_part(services: Services, fill: Fill, schema: str) -> dict[str, Any]:
    app = services.app
    source = ApplicationEventSource(app)
    _log("reading the log once without decoding (also warms PostgreSQL's cache)")
    raw_count, raw_s = _select_only(app)
    _log(f"select only: {raw_count} in {raw_s:.2f} s; now read and decode")
    count, read_s = _read_and_decode(source)
    if count != fill.events or raw_count != fill.events:
        raise Invalid(f"the log reads {count} / {raw_count} events; {fill.events} were stored")
    read_rate = count / read_s
    _log(f"read and decode: {count} in {read_s:.2f} s ({read_rate:.0f}/s); now rebuild")

    timed = TimedSource(source)
    projections = all_projections()
    # name -> times of its progress reports: PASS for the single pass over the log, a view's
    # name for the writing of its rows after the pass (one report before, one per chunk).
    # name -> its progress reports (time, reached, end): PASS for the single pass over the
    # log; a view's name for the writing of its rows after the pass (one report before it
    # starts, with the rows already written during the pass, then one per chunk).
    marks: dict[str, list[tuple[float, int, int]]] = {}

    def progress(name: str, reached: int, end: int) -> None:
        marks.setdefault(name, []).append((time.perf_counter(), reached, end))
        if reached == end:
            done = "read the log once and fed every view" if name == PASS else f"wrote {name}"
            _log(f"{done} ({time.perf_counter() - began:.1f} s)")

    began = time.perf_counter()
    rebuild(services.views, timed, projections, progress)
    total_s = time.perf_counter() - began

    pass_end = marks[PASS][-1][0]
    read_in_pass = sum(c.ended - c.began for c in timed.calls if c.began < pass_end)
    writes: list[dict[str, Any]] = []
    previous = pass_end
    for projection in projections:
        # A view's share: from the previous report (the pass's end, or the previous view's
        # last write) to its own last one: serialising its rows, then inserting them.
        reports = marks.get(projection.name, [(previous, 0, 0)])
        before, (last, _, rows_total) = reports[0][1], reports[-1]
        writes.append(
            {
                "view": projection.name,
                "rows": rows_total,
                "rows_after_pass": rows_total - before,
                "seconds": round(last - previous, 2),
            }
        )
        previous = last
    last_write = previous
    positions = services.projector.positions()
    if any(p != fill.events for p in positions.values()):
        raise Invalid(f"after the rebuild the views are at {positions}, not {fill.events}")
    rows = {
        table: _count_rows(schema, table)
        for table in ("sites", "site_configs", "current_runs", "run_history", "run_logs")
    }
    expected = {"sites": SITES, "site_configs": SITES, "current_runs": 0, "run_history": fill.runs}
    wrong = {t: (rows[t], n) for t, n in expected.items() if rows[t] != n}
    if wrong or rows["run_logs"] < fill.runs:
        raise Invalid(f"rebuilt views hold unexpected row counts (got, expected): {wrong}")
    applied = count * len(projections)
    read_in_rebuild = sum(c.ended - c.began for c in timed.calls)
    return {
        "events": count,
        "views_count": len(projections),
        "select_only": {"seconds": round(raw_s, 2), "events_per_s": _rate(raw_count, raw_s)},
        "read_decode": {"seconds": round(read_s, 2), "events_per_s": round(read_rate, 1)},
        "rebuild": {
            "seconds": round(total_s, 2),
            "log_events_per_s": _rate(count, total_s),
            "applied_events_per_s": _rate(applied, total_s),
            "read_decode_s": round(read_in_rebuild, 2),
            "apply_s": round(total_s - read_in_rebuild, 2),
        },
        "ratio_applied_to_read": round(applied / total_s / read_rate, 3),
        "ratio_log_to_read": round(count / total_s / read_rate, 3),
        # The phases of the rebuild: emptying the tables and the one pass over the log
        # (reading and decoding it; folding every event into every view, and the logs
        # view's lines written as they pile up), then each view's rows written, then the
        # positions moved and the commit.
        "pass": {
            "seconds": round(pass_end - began, 2),
            "events_per_s": _rate(count, pass_end - began),
            "read_decode_s": round(read_in_pass, 2),
            "fold_s": round(pass_end - began - read_in_pass, 2),
        },
        "writes": writes,
        "finish_s": round(began + total_s - last_write, 2),
        # From the pass's end to the commit: the views' positions are claimed meanwhile, so
        # this is how long the live projector (and every command waiting on it) waits.
        "held_s": round(began + total_s - pass_end, 2),
        "rows": rows,
    }


# --- part 2: projection lag --------------------------------------------------------------


@dataclass
class LagRecord:
    commands: list[tuple[float, float, int]] = field(default_factory=list)  # began, ended, pos
    progress: list[tuple[float, int]] = field(default_factory=list)  # when, position reached
    errors: list[str] = field(default_factory=list)
    late: int = 0  # commands that started more than one interval behind schedule


def _append_steadily(
    app: AutomationApp,
    account_id: uuid.UUID,
    run_ids: Sequence[uuid.UUID],
    paused: list[bool],
    seconds: float,
    record: LagRecord,
) -> None:
    """pause/resume commands at LAG_RATE on a fixed schedule (open loop)."""
    interval = 1.0 / LAG_RATE
    total = round(seconds * LAG_RATE)
    start = time.perf_counter()
    for i in range(total):
        due = start + i * interval
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > interval:
            record.late += 1
        k = i % len(run_ids)
        command = app.resume_run if paused[k] else app.pause_run
        began = time.perf_counter()
        try:
            written = command(account_id, run_ids[k])
        except Exception as exc:  # noqa: BLE001 - reported; the run is invalid
            record.errors.append(f"{type(exc).__name__}: {exc}")
            return
        record.commands.append((began, time.perf_counter(), written.position))
        paused[k] = not paused[k]


def _ms(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(_percentile(ordered, 50) * 1e3, 2),
        "p99_ms": round(_percentile(ordered, 99) * 1e3, 2),
        "max_ms": round(ordered[-1] * 1e3, 2) if ordered else 0.0,
    }


def _lag_part(services: Services, fill: Fill) -> dict[str, Any]:
    app, projector = services.app, services.projector
    timed = TimedSource(projector.source)
    projector.source = timed  # this instance only: times the projector's reads
    services.start_following()
    projector.start(poll_interval=1.0)
    run_ids = [
        app.start_run(fill.account_id, site_id, PENDING).value.id
        for site_id in fill.site_ids[:LAG_RUNS]
    ]
    if not projector.wait_for(app.recorder.max_notification_id() or 0, timeout=LAG_SETTLE_S):
        raise Invalid("the projector did not catch up with the runs' starts")
    paused = [False] * len(run_ids)
    _log(f"lag: {LAG_WARMUP_S:g} s warm-up, then {LAG_SECONDS:g} s at {LAG_RATE:g} events/s")
    warmup = LagRecord()
    _append_steadily(app, fill.account_id, run_ids, paused, LAG_WARMUP_S, warmup)
    if warmup.errors:
        raise Invalid(f"warm-up: {warmup.errors[0]}")
    projector.wait_for(app.recorder.max_notification_id() or 0, timeout=LAG_SETTLE_S)

    record = LagRecord()
    projector.on_progress.append(
        lambda reached: record.progress.append((time.perf_counter(), reached))
    )
    calls_before = len(timed.calls)
    began = time.perf_counter()
    _append_steadily(app, fill.account_id, run_ids, paused, LAG_SECONDS, record)
    appended_s = time.perf_counter() - began
    last = max((c[2] for c in record.commands), default=0)
    caught_up = projector.wait_for(last, timeout=LAG_SETTLE_S)
    projector.on_progress.clear()
    reads = [c for c in timed.calls[calls_before:] if c.count]
    if record.errors:
        raise Invalid(f"lag: {record.errors[0]}")
    if not caught_up:
        raise Invalid(f"the projector had not reached {last} {LAG_SETTLE_S:g} s after the load")

    reached = [p for _, p in record.progress]
    if reached != sorted(reached):
        raise Invalid("the projector reported positions out of order")
    lags: list[float] = []
    waits: list[float] = []  # command returned -> the read that fetched it began
    missing = 0
    read_ends = [r.ended for r in reads]
    progress_times = [t for t, _ in record.progress]
    for _, ended, position in record.commands:
        i = bisect.bisect_left(reached, position)
        if i == len(reached):
            missing += 1
            continue
        lags.append(record.progress[i][0] - ended)
        j = bisect.bisect_left(read_ends, record.progress[i][0]) - 1
        if 0 <= j < len(reads):
            waits.append(reads[j].began - ended)
    if missing:
        raise Invalid(f"{missing} appended events were never reported by the projector")
    # Each non-empty read of the projector is followed by its write and then its report.
    steps: list[tuple[float, float, int]] = []  # read s, write s, events
    for call in reads:
        k = bisect.bisect_left(progress_times, call.ended)
        if k < len(record.progress):
            steps.append((call.ended - call.began, record.progress[k][0] - call.ended, call.count))
    durations = [ended - began_ for began_, ended, _ in record.commands]
    return {
        "rate_target": LAG_RATE,
        "seconds": round(appended_s, 2),
        "events": len(record.commands),
        "rate_achieved": _rate(len(record.commands), appended_s),
        "late_commands": record.late,
        "runs": len(run_ids),
        "lag": _ms(lags) | {"negative": sum(1 for x in lags if x < 0)},
        "command": _ms(durations),
        "projector": {
            "steps": len(steps),
            "events_per_step": round(sum(s[2] for s in steps) / len(steps), 2) if steps else None,
            "read_decode": _ms([s[0] for s in steps]),
            "write_commit": _ms([s[1] for s in steps]),
            "wait_before_read": _ms(waits),
        },
    }


# --- running and reporting ---------------------------------------------------------------


@dataclass
class Outcome:
    fill: Fill | None = None
    rebuild: dict[str, Any] | None = None
    lag: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)


def _measure(schema: str, workdir: Path) -> Outcome:
    outcome = Outcome()
    settings = ServiceSettings(
        automation_data_dir=workdir,
        database_url=DATABASE_URL,
        amqp_url=None,
        AUTOMATION_DB_SCHEMA=schema,
    )
    services = build(settings)
    try:
        _log(f"filling the store with >= {FILL_EVENTS} events, {RUNS_PER_SAVE} runs per save")
        fill = outcome.fill = _fill(services.app)
        stored = _count_rows(schema, "automation_events")
        if stored != fill.events:
            raise Invalid(f"the events table holds {stored} rows; the log ends at {fill.events}")
        if stored < MIN_EVENTS:
            raise Invalid(f"only {stored} events stored; the benchmark needs {MIN_EVENTS}")
        _log(f"filled: {fill.events} events ({fill.runs} runs) in {fill.seconds:.1f} s")
        _step(outcome, "rebuild", lambda: _rebuild_part(services, fill, schema))
        if outcome.rebuild is not None:
            _checkpoint()
            _step(outcome, "lag", lambda: _lag_part(services, fill))
    except Exception as exc:  # noqa: BLE001 - reported; the run is invalid
        outcome.errors.append(f"fill: {type(exc).__name__}: {exc}")
    finally:
        services.close()
    return outcome


def _checkpoint() -> None:
    """Write the fill's and the rebuild's dirty pages out before the lag is measured: left
    to the server, that checkpoint lands in the middle of the measurement, and its writes
    stretch commits to tens of milliseconds. The lag to measure is the steady one."""
    began = time.perf_counter()
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as error:  # not allowed to this role: measured without it
        _log(f"no CHECKPOINT before the lag ({error}); a checkpoint may fall inside it")
        return
    _log(f"checkpoint before the lag: {time.perf_counter() - began:.1f} s")


def _step(outcome: Outcome, name: str, part: Callable[[], dict[str, Any]]) -> None:
    try:
        setattr(outcome, name, part())
    except Exception as exc:  # noqa: BLE001 - reported; the run is invalid
        outcome.errors.append(f"{name}: {type(exc).__name__}: {exc}")


def _drop_schema(schema: str) -> None:
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        _log(f"dropped schema {schema}")
    except psycopg.Error as error:
        _log(f"could not drop schema {schema}: {error}")


def _postgres_facts() -> dict[str, str]:
    facts: dict[str, str] = {}
    with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
        for setting in ("server_version", "synchronous_commit", "fsync", "shared_buffers"):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            facts[setting] = str(row[0]) if row else ""
    return facts


def _targets(rebuilt: dict[str, Any] | None, lag: dict[str, Any] | None) -> dict[str, Any]:
    ratio = rebuilt["ratio_applied_to_read"] if rebuilt else None
    p99 = lag["lag"]["p99_ms"] if lag else None
    return {
        "rebuild": {
            "what": "rebuild events applied/s (per view) / read-and-decode events/s",
            "ratio": ratio,
            "target": TARGET_REBUILD_RATIO,
            "met": ratio is not None and ratio >= TARGET_REBUILD_RATIO,
        },
        "lag": {
            "what": f"p99 projection lag at {LAG_RATE:g} events/s, ms",
            "p99_ms": p99,
            "target": TARGET_LAG_P99_MS,
            "met": p99 is not None and p99 <= TARGET_LAG_P99_MS,
        },
    }


def _rebuild_table(fill: dict[str, Any], rebuilt: dict[str, Any]) -> str:
    header = (
        f"{'rebuild':<22} {'events':>9} {'seconds':>8} {'events/s':>9} {'x read':>7} "
        f"{'read s':>7} {'apply s':>8}"
    )
    lines = [header, "-" * len(header)]
    events = rebuilt["events"]

    def line(name: str, count: int, row: dict[str, Any], ratio: Any, read: Any, apply: Any) -> None:
        lines.append(
            f"{name:<22} {count:>9} {row['seconds']:>8.2f} {_fmt(row['rate'], '.0f'):>9} "
            f"{_fmt(ratio, '.3f'):>7} {_fmt(read, '.2f'):>7} {_fmt(apply, '.2f'):>8}"
        )

    raw, read, total = rebuilt["select_only"], rebuilt["read_decode"], rebuilt["rebuild"]
    line("select only", events, {**raw, "rate": raw["events_per_s"]}, None, None, None)
    line("read and decode", events, {**read, "rate": read["events_per_s"]}, 1.0, None, None)
    one_pass = rebuilt["pass"]
    line(
        "rebuild: one pass",
        events,
        {**one_pass, "rate": one_pass["events_per_s"]},
        one_pass["events_per_s"] / read["events_per_s"],
        one_pass["read_decode_s"],
        one_pass["fold_s"],
    )
    for write in rebuilt["writes"]:
        seconds, rows = write["seconds"], write["rows_after_pass"]
        line(
            f"  write {write['view']}",
            rows,
            {"seconds": seconds, "rate": _rate(rows, seconds) if seconds else None},
            None,
            None,
            seconds,
        )
    finish = rebuilt["finish_s"]
    lines.append(f"{'  catch-up and commit':<22} {'':>9} {finish:>8.2f}")
    lines.append(f"{'  positions held':<22} {'':>9} {rebuilt['held_s']:>8.2f}")
    applied = events * rebuilt["views_count"]
    line(
        "rebuild all (applied)",
        applied,
        {**total, "rate": total["applied_events_per_s"]},
        rebuilt["ratio_applied_to_read"],
        total["read_decode_s"],
        total["apply_s"],
    )
    line(
        "rebuild all (log)",
        events,
        {**total, "rate": total["log_events_per_s"]},
        rebuilt["ratio_log_to_read"],
        None,
        None,
    )
    lines.append(
        f"store: {fill['events']} events, {fill['runs']} runs ({fill['events_per_run']} events "
        f"each), {fill['sites']} sites; filled at {fill['run_events_per_s']:.0f} events/s "
        f"({fill['runs_per_save']} runs per save)"
    )
    lines.append(
        "x read = events/s over read-and-decode events/s. A rebuild reads the log once and "
        "folds every view in memory in that pass, holding no lock; then it claims the views' "
        "positions and writes each view's rows ('write' lines count rows, not events) and "
        "applies what was stored since the pass ('positions held': how long the live projector "
        "waited): 'applied' counts every view's events, 'log' the log's once"
    )
    return "\n".join(lines)


def _lag_table(lag: dict[str, Any]) -> str:
    header = f"{'lag @ ' + format(lag['rate_target'], 'g') + ' events/s':<24} {'p50 ms':>7} "
    header += f"{'p99 ms':>7} {'max ms':>7}"
    lines = [header, "-" * len(header)]
    rows = [
        ("lag (visible - appended)", lag["lag"]),
        ("command", lag["command"]),
        ("projector: wait", lag["projector"]["wait_before_read"]),
        ("projector: read+decode", lag["projector"]["read_decode"]),
        ("projector: write+commit", lag["projector"]["write_commit"]),
    ]
    for name, row in rows:
        lines.append(
            f"{name:<24} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['max_ms']:>7.2f}"
        )
    lines.append(
        f"{lag['events']} events in {lag['seconds']} s ({lag['rate_achieved']:.0f}/s, "
        f"{lag['late_commands']} late); {lag['projector']['steps']} projector steps, "
        f"{_fmt(lag['projector']['events_per_step'], '.2f')} events each; "
        f"{lag['lag']['negative']} events seen before their command returned"
    )
    return "\n".join(lines)


def run(settings: Settings) -> int:
    """Run the projections benchmark; prints the tables, writes the JSON; 1 if invalid.

    Of the shared Settings it uses only output.
    """
    began = time.perf_counter()
    load_before = os.getloadavg()
    schema = f"bench_proj_{uuid.uuid4().hex[:8]}"
    _log(f"PostgreSQL {DATABASE_URL}, schema {schema}")
    outcome = Outcome()
    facts: dict[str, str] = {}
    try:
        facts = _postgres_facts()
        with tempfile.TemporaryDirectory(prefix="bench-projections-") as tmp:
            try:
                outcome = _measure(schema, Path(tmp))
            finally:
                _drop_schema(schema)
    except Exception as exc:  # noqa: BLE001 - e.g. PostgreSQL unreachable
        outcome.errors.append(f"{type(exc).__name__}: {exc}")
    fill = outcome.fill.summary() if outcome.fill else None
    valid = not outcome.errors and outcome.rebuild is not None and outcome.lag is not None
    target = _targets(outcome.rebuild, outcome.lag)
    result = {
        "benchmark": "projections",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "valid": valid,
        "errors": outcome.errors,
        "settings": {
            "database": DATABASE_URL.rpartition("@")[2],
            "postgres": facts,
            "schema": schema,
            "fill_events": FILL_EVENTS,
            "min_events": MIN_EVENTS,
            "runs_per_save": RUNS_PER_SAVE,
            "sites": SITES,
            "read_chunk": READ_CHUNK,
            "seed": SEED,
            "views": [p.name for p in all_projections()],
            "lag": {
                "rate": LAG_RATE,
                "warmup_s": LAG_WARMUP_S,
                "seconds": LAG_SECONDS,
                "runs": LAG_RUNS,
                "commands": "pause_run / resume_run in turn, one event each, one thread",
                "poll_interval_s": 1.0,
            },
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "fill": fill,
        "rebuild": outcome.rebuild,
        "lag": outcome.lag,
        "target": target,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(result, indent=2) + "\n")

    if fill is not None and outcome.rebuild is not None:
        print(_rebuild_table(fill, outcome.rebuild))
        print()
    if outcome.lag is not None:
        print(_lag_table(outcome.lag))
        print()
    rebuilt, lagged = target["rebuild"], target["lag"]
    print(
        f"target {rebuilt['what']} >= {TARGET_REBUILD_RATIO:g}: "
        f"{'met' if rebuilt['met'] else 'NOT met'} ({_fmt(rebuilt['ratio'], '.3f')}x)"
    )
    print(
        f"target p99 lag at {LAG_RATE:g} events/s <= {TARGET_LAG_P99_MS:g} ms: "
        f"{'met' if lagged['met'] else 'NOT met'} ({_fmt(lagged['p99_ms'], '.2f')} ms)"
    )
    for error in outcome.errors:
        print(f"INVALID: {error}")
    print(f"written: {settings.output} ({result['elapsed_s']} s)")
    return 0 if valid else 1
