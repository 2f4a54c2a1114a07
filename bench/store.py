"""The store benchmark: appending run events on PostgreSQL, and the run commands over HTTP.

Everything runs on PostgreSQL (``BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``) in fresh schemas named ``bench_store_<hex>_*``,
all dropped at the end. Two parts, each against a baseline measured in the same run:

1. **Append rate**, in this process: N writer threads each repeat the run commands
   ``start_run`` → ``pause_run`` → ``resume_run`` → ``cancel_run`` on a site of their own
   through ``AutomationApp`` (saves of 3, 1, 1 and 3 events), with the service's
   group-commit recorder and with the library's own recorder. The same N threads also
   append straight to each recorder (``store_*``): one stored run event per
   ``insert_events`` call on a stream of the thread's own, with no domain work, which is
   the store's own append rate. The baseline: single-row ``INSERT`` commits through
   psycopg (autocommit, one row per transaction) by N client threads on the same database.
2. **Command round trip**, over HTTP: ``run_now``, ``pause``, ``resume`` and ``cancel``
   against ``automation serve`` on PostgreSQL, sequential requests from one keep-alive
   httpx client; the baseline is ``GET /bare`` of ``bench.baseline_app`` with the same
   client, served the same way.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from automation.application.app import AutomationApp
from automation.config import Settings as ServiceSettings
from automation.domain.estimate import PendingWork
from bench.read_endpoints import Settings
from bench.servers import (
    UVICORN_SETTINGS,
    automation_command,
    clean_env,
    cpu_seconds,
    create_account,
    expect,
    free_port,
    serving,
)

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "store.json"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

# Targets the project tracks (reported, never asserted).
TARGET_APPEND_RATIO = 0.5  # app saves/s at 8 writers >= 0.5 x INSERT commits/s at 8 clients
TARGET_LATENCY_RATIO = 3.0  # p99(command) <= 3 x p99(bare)

WRITER_COUNTS = (1, 8)
PLAIN_RECORDER_TOPIC = "eventsourcing.postgres:PostgresApplicationRecorder"
EVENTS_TABLE = "automation_events"  # the application is named "automation"
INSERT_PAYLOAD = os.urandom(512)  # about the size of one stored run event
CREDITS = 10**15
PENDING = PendingWork(keywords=50)
# The commands of one cycle, in order, and the events each one's save appends.
COMMAND_EVENTS = (
    ("start_run", 3),  # RunStarted + RunAttached (site) + CreditsReserved (account)
    ("pause_run", 1),  # RunPaused
    ("resume_run", 1),  # RunResumed
    ("cancel_run", 3),  # RunCancelled + RunReleased (site) + CreditsReleased (account)
)

HTTP_CYCLES = 300  # run_now + pause + resume + cancel, measured
HTTP_WARMUP_CYCLES = 20
HTTP_TIME_LIMIT_S = 90.0  # the measured cycles stop early (and say so) past this
STAGE_DELAY_S = 3600
KEYWORDS = [f"bench keyword {i}" for i in range(50)]
HTTP_COMMANDS = ("run_now", "pause", "resume", "cancel")
# The baselines of the HTTP part, with their methods: a constant answer, and the textbook
# durable command (one psycopg transaction, one commit) on the same database.
BASELINES = {"bare": "GET", "naive_command": "POST"}
EXPECTED = {
    "run_now": (202, "running"),
    "pause": (200, "paused"),
    "resume": (200, "running"),
    "cancel": (200, "cancelled"),
}


class Invalid(RuntimeError):
    """The run cannot be trusted: an error, an unexpected answer, a miscount."""


def _log(message: str) -> None:
    sys.stderr.write(f"[bench store] {message}\n")
    sys.stderr.flush()


def _percentile_ms(ordered: Sequence[int], pct: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in ms."""
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index] / 1e6


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


# --- schemas -----------------------------------------------------------------------------


@contextmanager
def _schemas(names: Sequence[str]) -> Iterator[None]:
    """Fresh schemas for the block, dropped (with everything in them) when it ends."""
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        yield
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )
        _log(f"dropped schemas {', '.join(names)}")


def _count_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(table)
    )
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


# --- part 1: append rate -----------------------------------------------------------------


class Worker(Protocol):
    steps: int  # every step taken, inside the timed window or not

    def step(self) -> int:
        """One operation (a save, a commit); the events (rows) it appended."""
        ...

    def finish(self) -> int:
        """Leave the worker's state clean after the deadline (uncounted); rows appended."""
        ...


class InsertWorker:
    """One psycopg connection, autocommit: one single-row INSERT per transaction."""

    def __init__(self, schema: str) -> None:
        self.steps = 0
        self.conn = psycopg.connect(DATABASE_URL, autocommit=True)
        self.query = sql.SQL("INSERT INTO {}.bench_insert (payload) VALUES (%s)").format(
            sql.Identifier(schema)
        )

    def step(self) -> int:
        self.conn.execute(self.query, (INSERT_PAYLOAD,))
        self.steps += 1
        return 1

    def finish(self) -> int:
        return 0

    def close(self) -> None:
        self.conn.close()


class RunWriter:
    """An account and a site of its own; each step is the next command of the cycle."""

    def __init__(self, app: AutomationApp, number: int) -> None:
        self.app = app
        self.steps = 0
        self.account_id, _ = app.open_account(f"bench writer {number}", CREDITS)
        site = app.register_site(self.account_id, f"bench site {number}", "UTC").value
        self.site_id: uuid.UUID = site.id
        self.run_id: uuid.UUID | None = None
        self.next = 0

    def step(self) -> int:
        name, events = COMMAND_EVENTS[self.next]
        if name == "start_run":
            self.run_id = self.app.start_run(self.account_id, self.site_id, PENDING).value.id
        else:
            command: Callable[[uuid.UUID, uuid.UUID], object] = getattr(self.app, name)
            assert self.run_id is not None
            command(self.account_id, self.run_id)
        self.next = (self.next + 1) % len(COMMAND_EVENTS)
        self.steps += 1
        return events

    def finish(self) -> int:
        """Finish the cycle, so the site has no active run when the next block starts."""
        appended = 0
        while self.next != 0:
            appended += self.step()
        return appended


class StoreWriter:
    """The store alone: each step appends one stored run event to a run stream of its own
    through the recorder's ``insert_events`` (one save of one event, as the application's
    saves reach it), with no domain work before it. The event is a real run event, mapped
    (sealed, encoded) once by the application."""

    def __init__(self, app: AutomationApp, template: StoredEvent) -> None:
        self.recorder = app.recorder
        self.template = template
        self.stream = uuid.uuid4()
        self.version = 0
        self.steps = 0

    def step(self) -> int:
        self.version += 1
        event = StoredEvent(self.stream, self.version, self.template.topic, self.template.state)
        self.recorder.insert_events([event])
        self.steps += 1
        return 1

    def finish(self) -> int:
        return 0


def _run_event_template(app: AutomationApp, writer: RunWriter) -> StoredEvent:
    """A stored ``RunPaused`` of a real run, as the application maps it."""
    writer.step()  # start_run
    writer.step()  # pause_run
    assert writer.run_id is not None
    paused = list(app.events.get(writer.run_id))[-1]
    stored = app.mapper.to_stored_event(paused)
    writer.finish()
    return stored


class SaveCounter:
    """Counts the application's save attempts: a command retried after a conflict saves
    more than once, so attempts > commands would show contention between writers."""

    def __init__(self, app: AutomationApp) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        original = app.save

        def save(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
            return original(*args, **kwargs)

        setattr(app, "save", save)  # noqa: B010 - on this instance only, src untouched


@dataclass
class Block:
    """What the threads of one timed block did."""

    duration_s: float
    ops: int = 0  # operations completed inside the window
    events: int = 0  # events (rows) those operations appended
    appended: int = 0  # every row appended, inside the window or not
    latencies: array[int] = field(default_factory=lambda: array("q"))
    errors: list[str] = field(default_factory=list)


def _timed(workers: Sequence[Worker], duration_s: float) -> Block:
    """Every worker steps in a thread of its own until a shared deadline (closed loop)."""
    block = Block(duration_s)
    lock = threading.Lock()
    deadline = [0]

    def start_clock() -> None:  # run by one thread once all have reached the barrier
        deadline[0] = time.perf_counter_ns() + int(duration_s * 1e9)

    barrier = threading.Barrier(len(workers), action=start_clock)

    def loop(worker: Worker) -> None:
        ops = events = appended = 0
        latencies = array("q")
        error: str | None = None
        try:
            barrier.wait(timeout=30)
            end = deadline[0]
            while True:
                began = time.perf_counter_ns()
                rows = worker.step()
                done = time.perf_counter_ns()
                appended += rows
                if done > end:  # finished after the deadline: not counted, like wrk
                    break
                ops += 1
                events += rows
                latencies.append(done - began)
            appended += worker.finish()
        except Exception as exc:  # noqa: BLE001 - reported, and makes the run invalid
            error = f"{type(exc).__name__}: {exc}"
        with lock:
            block.ops += ops
            block.events += events
            block.appended += appended
            block.latencies.extend(latencies)
            if error:
                block.errors.append(error)

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + 60)
        if thread.is_alive():
            block.errors.append("a worker thread did not finish in time")
    return block


@dataclass
class AppendCase:
    name: str
    description: str
    threads: int
    workers: Sequence[Worker]
    events_schema: str | None = None  # the app cases: whose events table to count
    saves: SaveCounter | None = None
    recorder: str | None = None
    blocks: list[Block] = field(default_factory=list)
    commands: int = 0  # every command run (warm-up and past the deadline included)
    save_attempts: int = 0  # the application's save() calls over the same
    errors: list[str] = field(default_factory=list)

    def run_block(self, conn: psycopg.Connection[Any], duration_s: float, measured: bool) -> None:
        schema = self.events_schema
        rows_before = _count_rows(conn, schema, EVENTS_TABLE) if schema else 0
        saves_before = self.saves.calls if self.saves else 0
        steps_before = sum(w.steps for w in self.workers)
        block = _timed(self.workers, duration_s)
        self.commands += sum(w.steps for w in self.workers) - steps_before
        if self.saves:
            self.save_attempts += self.saves.calls - saves_before
        if schema:
            rows = _count_rows(conn, schema, EVENTS_TABLE) - rows_before
            if rows != block.appended:
                self.errors.append(
                    f"the events table grew by {rows} rows; the commands account for "
                    f"{block.appended}"
                )
        self.errors += block.errors
        if measured:
            self.blocks.append(block)

    def summary(self) -> dict[str, Any]:
        seconds = sum(b.duration_s for b in self.blocks)
        ops = sum(b.ops for b in self.blocks)
        events = sum(b.events for b in self.blocks)
        ordered = sorted(x for b in self.blocks for x in b.latencies)
        is_app = self.events_schema is not None
        return {
            "case": self.name,
            "description": self.description,
            "recorder": self.recorder,
            "threads": self.threads,
            "seconds": round(seconds, 3),
            "ops": ops,
            "ops_per_s": round(ops / seconds, 1) if seconds else 0.0,
            "events": events if is_app else None,
            "events_per_s": round(events / seconds, 1) if is_app and seconds else None,
            "p50_ms": round(_percentile_ms(ordered, 50), 3),
            "p99_ms": round(_percentile_ms(ordered, 99), 3),
            "commands_incl_warmup": self.commands if is_app else None,
            "save_attempts_incl_warmup": self.save_attempts if is_app else None,
            "errors": self.errors,
            "valid": not self.errors and ops > 0,
            "rounds": [
                {
                    "seconds": b.duration_s,
                    "ops": b.ops,
                    "ops_per_s": round(b.ops / b.duration_s, 1),
                    "events": b.events if is_app else None,
                }
                for b in self.blocks
            ],
        }


def _append_part(settings: Settings, base: str, gc_schema: str, plain_schema: str) -> list[Any]:
    """Part 1; returns the summary rows (INSERT, group commit, library recorder per N)."""
    most = max(WRITER_COUNTS)
    with ExitStack() as stack:
        conn = stack.enter_context(psycopg.connect(DATABASE_URL, autocommit=True))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.bench_insert (id bigserial PRIMARY KEY, payload bytea)"
            ).format(sql.Identifier(base))
        )
        gc_env = ServiceSettings(
            database_url=DATABASE_URL, AUTOMATION_DB_SCHEMA=gc_schema
        ).event_store_env()
        plain_env = {
            **ServiceSettings(
                database_url=DATABASE_URL, AUTOMATION_DB_SCHEMA=plain_schema
            ).event_store_env(),
            "APPLICATION_RECORDER_TOPIC": PLAIN_RECORDER_TOPIC,
        }
        inserters = [InsertWorker(base) for _ in range(most)]
        for inserter in inserters:
            stack.callback(inserter.close)
        cases: list[AppendCase] = []
        for label, env, description in (
            ("app_group_commit", gc_env, "AutomationApp, the service's group-commit recorder"),
            ("app_library", plain_env, "AutomationApp, the library's PostgresApplicationRecorder"),
        ):
            app = AutomationApp(env=env)
            stack.callback(app.close)
            counter = SaveCounter(app)
            writers = [RunWriter(app, i) for i in range(most)]
            recorder = f"{type(app.recorder).__module__}:{type(app.recorder).__qualname__}"
            _log(f"{label}: {most} accounts + sites opened; recorder {recorder}")
            template = _run_event_template(app, writers[0])
            stores = [StoreWriter(app, template) for _ in range(most)]
            store_label = label.replace("app_", "store_")
            for n in WRITER_COUNTS:
                cases.append(
                    AppendCase(
                        label,
                        description,
                        n,
                        writers[:n],
                        env["POSTGRES_SCHEMA"],
                        counter,
                        recorder,
                    )
                )
                cases.append(
                    AppendCase(
                        store_label,
                        f"the store alone: {recorder}.insert_events, one run event per save",
                        n,
                        stores[:n],
                        env["POSTGRES_SCHEMA"],
                        None,
                        recorder,
                    )
                )
        for n in WRITER_COUNTS:
            cases.append(
                AppendCase(
                    "insert",
                    "psycopg, autocommit: one single-row INSERT per transaction",
                    n,
                    inserters[:n],
                )
            )
        order = {
            "insert": 0,
            "store_group_commit": 1,
            "store_library": 2,
            "app_group_commit": 3,
            "app_library": 4,
        }
        cases.sort(key=lambda case: (case.threads, order[case.name]))
        if settings.warmup_s > 0:
            for case in cases:
                case.run_block(conn, settings.warmup_s, measured=False)
            _log(f"append: warmed up ({settings.warmup_s:g} s per case)")
        for round_number in range(settings.rounds):
            for case in cases:
                case.run_block(conn, settings.duration_s, measured=True)
                block = case.blocks[-1]
                _log(
                    f"round {round_number + 1}/{settings.rounds} {case.name:<17} x{case.threads} "
                    f"{block.ops / block.duration_s:>8.0f} ops/s  errors {len(block.errors)}"
                )
    rows = [case.summary() for case in cases]
    inserts = {row["threads"]: row for row in rows if row["case"] == "insert"}
    for row in rows:
        base_rate = inserts[row["threads"]]["ops_per_s"]
        row["ratio_to_insert"] = round(row["ops_per_s"] / base_rate, 3) if base_rate else None
    return rows


# --- part 2: command round trips over HTTP -----------------------------------------------


def _setup_site(client: httpx.Client, base_url: str, headers: dict[str, str]) -> str:
    """A site with 50 keywords whose stage delays are an hour, so a run stays where it starts
    and the orchestrator and workers stay idle while the commands are measured."""
    api = base_url + "/api/v1"
    site = expect(
        client.post(f"{api}/sites", json={"name": "bench", "timezone": "UTC"}, headers=headers),
        201,
    )
    site_id: str = site["site_id"]
    params = {"site_id": site_id}
    keywords = {"keywords": KEYWORDS}
    expect(
        client.post(f"{api}/planner/keywords", params=params, json=keywords, headers=headers), 201
    )
    delays = {"within_stage_delay": STAGE_DELAY_S, "between_stage_delay": STAGE_DELAY_S}
    expect(
        client.put(f"{api}/automation/update_config", params=params, json=delays, headers=headers),
        200,
    )
    return site_id


@dataclass
class Samples:
    name: str
    latencies: array[int] = field(default_factory=lambda: array("q"))
    cpu_s: float | None = 0.0

    def add_cpu(self, before: float | None, after: float | None) -> None:
        if self.cpu_s is None or before is None or after is None:
            self.cpu_s = None
        else:
            self.cpu_s += after - before


def _timed_request(
    client: httpx.Client, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, int]:
    began = time.perf_counter_ns()
    response = client.request(method, url, **kwargs)
    return response, time.perf_counter_ns() - began


def _command_cycle(
    client: httpx.Client,
    base_url: str,
    headers: dict[str, str],
    site_id: str,
    samples: dict[str, Samples] | None,
) -> None:
    """run_now, pause, resume, cancel of one new run; every answer checked."""
    run_id = ""
    for name in HTTP_COMMANDS:
        params = {"site_id": site_id} if name == "run_now" else {"run_id": run_id}
        url = f"{base_url}/api/v1/automation/{name}"
        response, elapsed = _timed_request(client, "POST", url, params=params, headers=headers)
        status, state = EXPECTED[name]
        body = expect(response, status)
        if body.get("status") != state:
            raise Invalid(f"{name} answered status {body.get('status')!r}, not {state!r}")
        if name == "run_now":
            run_id = str(body["run_id"])
        if samples is not None:
            samples[name].latencies.append(elapsed)


def _baseline_request(client: httpx.Client, method: str, url: str, samples: Samples | None) -> None:
    response, elapsed = _timed_request(client, method, url)
    expect(response, 200)
    if samples is not None:
        samples.latencies.append(elapsed)


def _latency_row(samples: Samples) -> dict[str, Any]:
    ordered = sorted(samples.latencies)
    n = len(ordered)
    return {
        "endpoint": samples.name,
        "requests": n,
        "p50_ms": round(_percentile_ms(ordered, 50), 3),
        "p99_ms": round(_percentile_ms(ordered, 99), 3),
        "mean_ms": round(sum(ordered) / n / 1e6, 3) if n else 0.0,
        "max_ms": round(ordered[-1] / 1e6, 3) if n else 0.0,
        "server_cpu_us_per_request": (
            round(samples.cpu_s * 1e6 / n, 1) if samples.cpu_s is not None and n else None
        ),
    }


def _http_part(settings: Settings, schema: str, workdir: Path) -> dict[str, Any]:
    """Part 2; returns the rows (bare first) and how many cycles were measured."""
    data_dir = workdir / "service-data"
    data_dir.mkdir()
    env = clean_env(
        {
            "DATABASE_URL": DATABASE_URL,
            "AUTOMATION_DB_SCHEMA": schema,
            "AUTOMATION_DATA_DIR": str(data_dir),
        }
    )
    token = create_account(env)
    headers = {"Authorization": f"Bearer {token}"}
    service_port, baseline_port = free_port(), free_port()
    baseline_command = [sys.executable, "-m", "bench.baseline_app", "--port", str(baseline_port)]
    baseline_command += ["--db", str(workdir / "naive.db")]
    baseline_command += ["--postgres", DATABASE_URL, "--schema", schema]
    with ExitStack() as stack:
        service = stack.enter_context(
            serving(
                "automation serve",
                automation_command("serve", "--port", str(service_port)),
                service_port,
                env,
                workdir / "service.log",
                "/healthz",
            )
        )
        baseline = stack.enter_context(
            serving(
                "baseline app",
                baseline_command,
                baseline_port,
                clean_env({}),
                workdir / "baseline.log",
                "/bare",
                cwd=PROJECT_DIR,
            )
        )
        # One client for both servers: the same keep-alive pool, settings and parsing.
        client = stack.enter_context(httpx.Client(timeout=30.0))
        site_id = _setup_site(client, service.base_url, headers)
        baselines = {
            name: (method, baseline.base_url + "/" + name) for name, method in BASELINES.items()
        }
        for _ in range(HTTP_WARMUP_CYCLES):
            _command_cycle(client, service.base_url, headers, site_id, None)
            for method, url in baselines.values():
                for _ in HTTP_COMMANDS:
                    _baseline_request(client, method, url, None)
        _log(f"http: set up and warmed up ({HTTP_WARMUP_CYCLES} cycles)")
        samples = {name: Samples(name) for name in (*BASELINES, *HTTP_COMMANDS)}
        for name in HTTP_COMMANDS:
            samples[name].cpu_s = None  # measured for the four commands together, below
        service_cpu = Samples("commands")
        per_round = -(-HTTP_CYCLES // settings.rounds)
        cycles = 0
        deadline = time.monotonic() + HTTP_TIME_LIMIT_S
        truncated = False
        service_pid, baseline_pid = service.process.pid, baseline.process.pid
        for round_number in range(settings.rounds):
            todo = min(per_round, HTTP_CYCLES - cycles)
            done = 0
            before = cpu_seconds(service_pid)
            while done < todo and not (truncated := time.monotonic() > deadline):
                _command_cycle(client, service.base_url, headers, site_id, samples)
                done += 1
            # The service's CPU (all its threads) over the block, for the commands together.
            service_cpu.add_cpu(before, cpu_seconds(service_pid))
            for name, (method, url) in baselines.items():
                before = cpu_seconds(baseline_pid)
                for _ in range(done * len(HTTP_COMMANDS)):
                    _baseline_request(client, method, url, samples[name])
                samples[name].add_cpu(before, cpu_seconds(baseline_pid))
            cycles += done
            _log(f"http: round {round_number + 1}/{settings.rounds}: {done} cycles")
            if truncated:
                _log(f"http: time limit of {HTTP_TIME_LIMIT_S:g} s reached after {cycles} cycles")
                break
    rows = [_latency_row(s) for s in samples.values()]
    bare, naive = rows[0], rows[1]
    for row in rows:
        for pct in ("p50", "p99"):
            for base_name, base in (("bare", bare), ("naive_command", naive)):
                ratio = row[f"{pct}_ms"] / base[f"{pct}_ms"] if base[f"{pct}_ms"] else None
                row[f"{pct}_ratio_to_{base_name}"] = round(ratio, 2) if ratio else None
    commands = cycles * len(HTTP_COMMANDS)
    return {
        "cycles": cycles,
        "truncated_by_time_limit": truncated,
        "service_cpu_us_per_command": (
            round(service_cpu.cpu_s * 1e6 / commands, 1)
            if service_cpu.cpu_s is not None and commands
            else None
        ),
        "rows": rows,
    }


# --- running and reporting ---------------------------------------------------------------


def _postgres_facts() -> dict[str, str]:
    """What decides commit speed on this server (a commit waits for its WAL flush)."""
    facts: dict[str, str] = {}
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        for setting in ("server_version", "synchronous_commit", "fsync", "wal_sync_method"):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            facts[setting] = str(row[0]) if row else ""
    return facts


def _row(rows: list[dict[str, Any]], case: str, threads: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["case"] == case and r["threads"] == threads), None)


def _append_target(rows: list[dict[str, Any]], kind: str, what: str) -> dict[str, Any]:
    """The append target for ``kind`` ("app" or "store") at the most writers, beside the
    library's recorder doing the same."""
    most = max(WRITER_COUNTS)
    ours, library = _row(rows, f"{kind}_group_commit", most), _row(rows, f"{kind}_library", most)
    ratio = ours["ratio_to_insert"] if ours else None
    return {
        "what": f"{what}/s at {most} writers / INSERT commits/s at {most} clients",
        "ratio": ratio,
        "library_recorder_ratio": library["ratio_to_insert"] if library else None,
        "target": TARGET_APPEND_RATIO,
        "met": ratio is not None and ratio >= TARGET_APPEND_RATIO,
    }


def _targets(append: list[dict[str, Any]], http: dict[str, Any] | None) -> dict[str, Any]:
    target: dict[str, Any] = {
        "append": _append_target(append, "app", "app saves"),
        "store_append": _append_target(append, "store", "store appends"),
        "latency": {},
    }
    for row in http["rows"] if http else []:
        if row["endpoint"] not in HTTP_COMMANDS:
            continue
        ratio = row["p99_ratio_to_bare"]
        target["latency"][row["endpoint"]] = {
            "what": "p99(command) / p99(bare)",
            "ratio": ratio,
            "target": TARGET_LATENCY_RATIO,
            "met": ratio is not None and ratio <= TARGET_LATENCY_RATIO,
        }
    return target


def _append_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'append (in-process)':<18} {'threads':>7} {'ops/s':>8} {'events/s':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'x INSERT':>9} {'errors':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['case']:<18} {row['threads']:>7} {row['ops_per_s']:>8.0f} "
            f"{_fmt(row['events_per_s'], '.0f'):>9} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} "
            f"{_fmt(row['ratio_to_insert'], '.3f'):>9} {len(row['errors']):>6}"
        )
    lines.append(
        "ops = single-row INSERT commits (insert), one-event appends to the recorder (store_*), "
        "or saves, one per command (app_*); p50/p99 per op"
    )
    return "\n".join(lines)


def _http_table(http: dict[str, Any]) -> str:
    header = (
        f"{'round trip (HTTP)':<18} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'x bare p50':>10} {'x bare p99':>10} {'x naive p99':>11}"
    )
    lines = [header, "-" * len(header)]
    for row in http["rows"]:
        lines.append(
            f"{row['endpoint']:<18} {row['requests']:>8} {row['p50_ms']:>7.2f} "
            f"{row['p99_ms']:>7.2f} {row['max_ms']:>7.2f} "
            f"{_fmt(row['p50_ratio_to_bare'], '.2f'):>10} "
            f"{_fmt(row['p99_ratio_to_bare'], '.2f'):>10} "
            f"{_fmt(row['p99_ratio_to_naive_command'], '.2f'):>11}"
        )
    bare_cpu = http["rows"][0]["server_cpu_us_per_request"]
    naive_cpu = http["rows"][1]["server_cpu_us_per_request"]
    lines.append(
        f"server CPU: service {_fmt(http['service_cpu_us_per_command'], '.0f')} us per command "
        f"(all threads, the four commands together); bare {_fmt(bare_cpu, '.0f')}, "
        f"naive_command {_fmt(naive_cpu, '.0f')} us per request"
    )
    return "\n".join(lines)


def run(settings: Settings) -> int:
    """Run the whole store benchmark; prints the tables, writes the JSON; 1 if invalid.

    Of the shared Settings it uses duration_s, warmup_s (part 1), rounds and output.
    """
    began = time.perf_counter()
    load_before = os.getloadavg()
    base = f"bench_store_{uuid.uuid4().hex[:8]}"
    gc_schema, library_schema, http_schema = f"{base}_gc", f"{base}_lib", f"{base}_http"
    _log(
        f"PostgreSQL {DATABASE_URL}, schemas {base}[_gc|_lib|_http]; append: threads "
        f"{'/'.join(map(str, WRITER_COUNTS))}, {settings.warmup_s:g} s warm-up per case, then "
        f"{settings.rounds} x {settings.duration_s:g} s; http: {HTTP_CYCLES} cycles"
    )
    errors: list[str] = []
    append: list[dict[str, Any]] = []
    http: dict[str, Any] | None = None
    facts: dict[str, str] = {}
    try:
        facts = _postgres_facts()
        with (
            tempfile.TemporaryDirectory(prefix="bench-store-") as tmp,
            _schemas([base, gc_schema, library_schema, http_schema]),
        ):
            try:
                append = _append_part(settings, base, gc_schema, library_schema)
            except Exception as exc:  # noqa: BLE001 - reported; the run is invalid
                errors.append(f"append: {type(exc).__name__}: {exc}")
            try:
                http = _http_part(settings, http_schema, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - reported; the run is invalid
                errors.append(f"http: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - e.g. PostgreSQL unreachable
        errors.append(f"{type(exc).__name__}: {exc}")
    for row in append:
        errors += [f"append {row['case']} x{row['threads']}: {e}" for e in row["errors"]]
        if row["ops"] == 0:
            errors.append(f"append {row['case']} x{row['threads']}: nothing completed")
    valid = not errors and bool(append) and http is not None
    target = _targets(append, http)
    result = {
        "benchmark": "store",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "valid": valid,
        "errors": errors,
        "settings": {
            "database": DATABASE_URL.rpartition("@")[2],
            "postgres": facts,
            "schemas": [base, gc_schema, library_schema, http_schema],
            "append": {
                "threads": list(WRITER_COUNTS),
                "warmup_s": settings.warmup_s,
                "duration_s": settings.duration_s,
                "rounds": settings.rounds,
                "cycle": [name for name, _ in COMMAND_EVENTS],
                "events_per_command": dict(COMMAND_EVENTS),
                "insert_payload_bytes": len(INSERT_PAYLOAD),
                "writers": "one account and one site per writer thread",
            },
            "http": {
                "cycles": HTTP_CYCLES,
                "warmup_cycles": HTTP_WARMUP_CYCLES,
                "time_limit_s": HTTP_TIME_LIMIT_S,
                "rounds": settings.rounds,
                "client": "one httpx.Client, keep-alive, sequential requests",
                "uvicorn": UVICORN_SETTINGS,
                "service": "automation serve on PostgreSQL (no AMQP_URL), stage delays 1 h",
            },
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "append": append,
        "http": http,
        "target": target,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(result, indent=2) + "\n")

    if append:
        print(_append_table(append))
        print()
    if http is not None:
        print(_http_table(http))
        print()
    for verdict in (target["store_append"], target["append"]):
        print(
            f"target {verdict['what']} >= {TARGET_APPEND_RATIO}: "
            f"{'met' if verdict['met'] else 'NOT met'} ({_fmt(verdict['ratio'], '.3f')}x; "
            f"library recorder {_fmt(verdict['library_recorder_ratio'], '.3f')}x)"
        )
    for name, item in target["latency"].items():
        print(
            f"target p99({name}) <= {TARGET_LATENCY_RATIO:g}x p99(bare): "
            f"{'met' if item['met'] else 'NOT met'} ({_fmt(item['ratio'], '.2f')}x)"
        )
    if http is not None:
        floor = http["rows"][1]
        print(
            f"floor: p99(naive_command) = {_fmt(floor['p99_ratio_to_bare'], '.2f')}x p99(bare) "
            "(one transaction, one commit, no events, no projection)"
        )
    if http is not None and http["truncated_by_time_limit"]:
        print(f"note: the HTTP part stopped at its time limit after {http['cycles']} cycles")
    for error in errors:
        print(f"INVALID: {error}")
    print(f"written: {settings.output} ({result['elapsed_s']} s)")
    return 0 if valid else 1
