"""The pipeline benchmark: keywords per second through all seven stages, against Celery.

Six pipeline runs, each driven from this process the way ``tests/integration/
test_pipeline.py`` drives one (``build(Settings)``, a site with keywords,
``BackgroundRoles``, ``start_run``, until the run has ended), with the zero-cost AI provider
(``free``) and both stage delays 0, on uvloop (the loop ``automation serve`` runs its roles
on):

* batch size 1 (every ``stage_N_batch_size`` = 1) on 40 keywords, and the default batch
  sizes (``SiteConfig``'s) on 200 keywords;
* on three layouts: the embedded stack (SQLite in a fresh temp data dir, in-process bus),
  all roles in this process, as ``automation serve`` runs it; the production stack
  (PostgreSQL in a fresh schema, RabbitMQ with a queue prefix and events exchange of the
  run's own; both dropped afterwards) as it is deployed, with the stage workers in
  ``WORKER_PROCESSES`` (2, Celery's concurrency) separate ``automation worker`` processes
  and the orchestrator and projector in this process; and the production stack with every
  role in this process, for comparison (not held to the targets).

The worker processes are started before the run and timed only once they all consume the
work queue; they are stopped (SIGTERM, a graceful stop) before the schema is dropped.

The baseline, on the same RabbitMQ in the same run: Celery chains of seven tasks that
return their input (``bench/celery_chains.py``), a ``celery worker`` subprocess with
concurrency 2 and the ``rpc://`` result backend, 40 chains submitted at once, timed until
every chain's result is back, in a few rounds. Beside it, each stack's floor, measured the
same way: textbook durable chains on PostgreSQL and RabbitMQ (``bench/durable_chains.py``)
and in one process on SQLite (``bench/embedded_chains.py``); under each target, the floor
says what that mechanism alone could carry of the case.

Every run's critical path is also timed by wrapping a few methods of the wired services in
this process (a couple of microseconds per call), so the table says where a batch's time
goes; what worker processes do is not timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any
from uuid import UUID

import aio_pika
import uvloop

from automation.application.ports import KeywordInput
from automation.bootstrap import Services, build
from automation.config import Settings as ServiceSettings
from automation.demo import demo_keywords
from automation.domain.config import SiteConfig
from bench import celery_chains, durable_chains, embedded_chains, read_endpoints
from bench.servers import automation_command, clean_env, machine_cpu_seconds
from bench.stacks import AMQP_URL, POSTGRES_URL, delete_rabbit, service_env, stack, unreachable
from consumers.orchestrator import WORK_QUEUE
from consumers.runtime import BackgroundRoles

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "pipeline.json"

BATCH_1_KEYWORDS = 40
DEFAULT_KEYWORDS = 200
STAGES = range(1, 7)  # stage 7 (the review gate) has no batch size
NO_DELAYS = {"within_stage_delay": 0, "between_stage_delay": 0}
BATCH_1_CONFIG = {**NO_DELAYS, **{f"stage_{s}_batch_size": 1 for s in STAGES}}
DEFAULT_CONFIG = {
    **NO_DELAYS,
    **{f"stage_{s}_batch_size": SiteConfig().batch_size(s) for s in STAGES},
}
TARGETS = {"batch_size_1": 1.0, "default": 3.0}  # pipeline items/s over Celery chains/s
FLOOR_CHAINS = {"production": "durable", "embedded": "embedded"}  # each backend's floor

REPEATS = 3  # each case runs this many times on a fresh stack; the median run is reported
RUN_TIMEOUT_S = 150.0
POLL_S = 0.02
CELERY_CONCURRENCY = 2
WORKER_PROCESSES = CELERY_CONCURRENCY  # production's stage workers, like Celery's pool
WORKER_START_TIMEOUT_S = 60.0
CELERY_ROUNDS = 8
CELERY_WARMUP_CHAINS = BATCH_1_KEYWORDS
CELERY_TIMEOUT_S = 60.0
TERMINAL_EVENTS = frozenset({"RunCompleted", "RunFailed", "RunCancelled"})
# The critical path of one batch, in order: what the table breaks the time per batch into.
PHASES = ("advance_run", "batch_is_due", "run_batch", "record_batch")
WORKER_PHASES = ("batch_is_due", "run_batch", "record_batch")


def _log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


# --- timing the service's critical path ------------------------------------------------


class Timings:
    """Seconds and calls of the wrapped methods, from whichever thread calls them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def wrap(self, owner: object, attribute: str, label: str) -> None:
        """Shadow ``owner.attribute`` (a bound method) with a timed copy on the instance."""
        method: Callable[..., Any] = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._add(label, time.perf_counter() - started)

        setattr(owner, attribute, timed)

    def _add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] = self.seconds.get(label, 0.0) + seconds
            self.calls[label] = self.calls.get(label, 0) + 1

    def snapshot(self) -> tuple[dict[str, float], dict[str, int]]:
        with self._lock:
            return dict(self.seconds), dict(self.calls)


def _instrument(services: Services) -> Timings:
    timings = Timings()
    app = services.app
    timings.wrap(app, "advance_run", "advance_run")  # orchestrator: decide, save, dispatch
    timings.wrap(app, "batch_is_due", "batch_is_due")  # worker: is this the batch in flight?
    timings.wrap(services.worker.runner, "run_batch", "run_batch")  # inputs, AI, outputs
    timings.wrap(app, "record_batch", "record_batch")  # worker: record the batch, charge
    # The same, dispatching the stage's next batches in the record's save.
    timings.wrap(app, "record_and_refill", "record_batch")
    timings.wrap(app.repository, "get", "aggregate_loads")  # inside the phases above
    timings.wrap(app, "save", "event_saves")  # inside the phases above
    return timings


# --- the pipeline runs --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    backend: str  # "embedded" or "production"
    batching: str  # "batch_size_1" or "default"
    keywords: list[str]
    config: dict[str, int]
    # How many ``automation worker`` processes take the stage work; 0: this process does.
    worker_processes: int = 0
    targeted: bool = True  # held to the targets (the stack as it is deployed)

    @property
    def layout(self) -> str:
        if self.worker_processes:
            return f"{self.worker_processes} worker processes"
        return "one process"

    @property
    def name(self) -> str:
        return f"{self.backend} ({self.layout})"


# Each stack as it is deployed: the embedded default is one process by design; production
# runs its stage workers as separate `automation worker` processes (docs/deployment.md),
# as many as Celery's pool has processes here. Production all in one process stays in the
# table for comparison; only the deployed layouts are held to the targets.
LAYOUTS = (("embedded", 0, True), ("production", WORKER_PROCESSES, True), ("production", 0, False))


def _cases() -> list[Case]:
    keywords = demo_keywords()
    return [
        Case(backend, batching, keywords[:count], config, workers, targeted)
        for backend, workers, targeted in LAYOUTS
        for batching, count, config in (
            ("batch_size_1", BATCH_1_KEYWORDS, BATCH_1_CONFIG),
            ("default", DEFAULT_KEYWORDS, DEFAULT_CONFIG),
        )
    ]


def _site_with_keywords(services: Services, case: Case) -> tuple[UUID, UUID]:
    app = services.app
    account_id, _ = app.open_account("bench", 100_000_000)
    site_id: UUID = app.register_site(account_id, "bench", "UTC").value.id
    app.update_config(account_id, site_id, case.config)
    inputs = [KeywordInput(keyword) for keyword in case.keywords]
    services.content.add_keywords(site_id, inputs, app.clock.now())
    return account_id, site_id


def _last_event_name(services: Services, run_id: UUID) -> str:
    """The class name of the run's last stored event, from its topic (nothing decoded)."""
    stored = services.app.recorder.select_events(run_id, desc=True, limit=1)
    return stored[0].topic.rpartition(".")[2] if stored else ""


async def _until_ended(services: Services, run_id: UUID, deadline: float) -> str | None:
    """The run's terminal event's name, or None at the deadline. A terminal event is a
    run's last, so this reads only the topic of the run's last stored event: watching, in
    the process it watches, costs the run next to nothing."""
    while time.monotonic() < deadline:
        name = await asyncio.to_thread(_last_event_name, services, run_id)
        if name in TERMINAL_EVENTS:
            return name
        await asyncio.sleep(POLL_S)
    return None


async def _run_case(services: Services, case: Case) -> dict[str, Any]:
    app = services.app
    services.start_following()
    services.projector.start(poll_interval=0.2)
    account_id, site_id = _site_with_keywords(services, case)
    roles = BackgroundRoles(services, orchestrator=True, workers=not case.worker_processes)
    await roles.start()
    try:
        timings = _instrument(services)
        cpu_before = machine_cpu_seconds()
        started = time.perf_counter()
        pending = services.content.pending_work(site_id)
        run_id: UUID = app.start_run(account_id, site_id, pending).value.id
        ended = await _until_ended(services, run_id, time.monotonic() + RUN_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        cpu_after = machine_cpu_seconds()
        seconds, calls = timings.snapshot()
    finally:
        await roles.stop()
    run = app.run(account_id, run_id)
    events = list(app.events.get(run_id))
    batches = sum(1 for event in events if type(event).__name__ == "BatchDispatched")
    status = run.status.value if ended else f"not ended after {RUN_TIMEOUT_S:.0f} s"
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    row = _case_row(case, status, run.error, elapsed, batches, events, run.stages, seconds, calls)
    for key, count in (("s", 0), ("ms_per_item", len(case.keywords)), ("ms_per_batch", batches)):
        value = None if cpu is None else (cpu if not count else cpu * 1000 / count)
        row[f"machine_cpu_{key}"] = None if value is None else round(value, 3)
    return row


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of a case with the median items/s, standing for the case, with every run's
    rate beside it (a run is a second or two, so one alone swings with the machine)."""
    ordered = sorted(runs, key=lambda r: r["items_per_s"])
    row = dict(ordered[len(ordered) // 2])
    row["runs"] = [
        {"items_per_s": r["items_per_s"], "elapsed_s": r["elapsed_s"], "status": r["status"]}
        for r in runs
    ]
    row["items_per_s_min"] = ordered[0]["items_per_s"]
    row["items_per_s_max"] = ordered[-1]["items_per_s"]
    row["valid"] = all(r["valid"] for r in runs)
    if not row["valid"]:
        failed = next(r for r in runs if not r["valid"])
        row["status"], row["error"] = failed["status"], failed["error"]
    return row


def _case_row(
    case: Case,
    status: str,
    error: str | None,
    elapsed: float,
    batches: int,
    events: list[Any],
    stages: dict[int, dict[str, Any]],
    seconds: dict[str, float],
    calls: dict[str, int],
) -> dict[str, Any]:
    per_batch = max(batches, 1)
    # Phases run in worker processes are not timed here (None).
    breakdown = {
        name: None
        if case.worker_processes and name in WORKER_PHASES
        else round(seconds.get(name, 0.0) * 1000 / per_batch, 2)
        for name in PHASES
    }
    loads = calls.get("aggregate_loads", 0)
    return {
        "case": case.name,
        "backend": case.backend,
        "layout": case.layout,
        "worker_processes": case.worker_processes,
        "targeted": case.targeted,
        "batching": case.batching,
        "batch_sizes": {k: v for k, v in case.config.items() if k.endswith("_batch_size")},
        "keywords": len(case.keywords),
        "status": status,
        "error": error,
        "valid": status == "completed",
        "elapsed_s": round(elapsed, 3),
        "items_per_s": round(len(case.keywords) / elapsed, 3),
        "batches": batches,
        "ms_per_batch": round(elapsed * 1000 / per_batch, 2),
        "steps_per_s": round(batches / elapsed, 1),  # a batch is one durable step
        "run_events": len(events),
        "stages": {
            str(s): {"processed": r["processed"], "created": r["created"]}
            for s, r in stages.items()
        },
        "breakdown_ms_per_batch": breakdown,
        "aggregate_loads": {
            "calls_per_batch": round(loads / per_batch, 2),
            "ms_per_batch": round(seconds.get("aggregate_loads", 0.0) * 1000 / per_batch, 2),
            "ms_per_call": round(seconds.get("aggregate_loads", 0.0) * 1000 / max(loads, 1), 3),
        },
        "event_saves": {
            "calls_per_batch": round(calls.get("event_saves", 0) / per_batch, 2),
            "ms_per_batch": round(seconds.get("event_saves", 0.0) * 1000 / per_batch, 2),
        },
    }


def _measure_case(case: Case, workdir: Path) -> dict[str, Any]:
    with stack(case.backend, workdir) as settings:
        services = build(settings)  # first: it creates the schema the workers use
        try:
            with (
                _worker_processes(settings, case.worker_processes, workdir),
                # The loop `automation serve` runs these roles on (uvicorn's uvloop).
                asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
            ):
                row = runner.run(_run_case(services, case))
        finally:
            services.close()
    _log(
        f"{case.name:<31} {case.batching:<12} {row['keywords']:>4} keywords: {row['status']} "
        f"in {row['elapsed_s']:.1f} s, {row['items_per_s']:.2f} items/s, {row['batches']} "
        f"batches, {row['ms_per_batch']:.1f} ms/batch"
    )
    return row


@contextmanager
def _worker_processes(
    settings: ServiceSettings, count: int, workdir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``automation worker`` processes, consuming the work queue until the
    block ends (then stopped as a process manager would: SIGTERM, a graceful stop)."""
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for number in range(count):
            log = workdir / f"worker-{settings.database_schema}-{number}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    automation_command("worker"),
                    cwd=PROJECT_DIR,
                    env=service_env(settings),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            processes.append(process)
            logs.append(log)
        if processes:
            queue = settings.queue_prefix + WORK_QUEUE
            deadline = time.monotonic() + WORKER_START_TIMEOUT_S
            asyncio.run(_until_consumers(queue, processes, logs, deadline))
        yield processes
    finally:
        for process in processes:
            _stop_process_group(process)


async def _until_consumers(
    queue: str, processes: list[subprocess.Popen[bytes]], logs: list[Path], deadline: float
) -> None:
    """Wait until every worker process consumes ``queue``, so the run's time does not
    include their start-up (``deadline``: on the ``time.monotonic`` clock)."""
    connection = await aio_pika.connect(AMQP_URL, timeout=10)
    async with connection:
        while True:
            for process, log in zip(processes, logs, strict=True):
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"a worker process exited ({process.returncode}):\n{tail}")
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
                consumers = declared.declaration_result.consumer_count or 0
            except aio_pika.exceptions.ChannelClosed:
                consumers = 0  # not declared yet: no worker is up
            finally:
                with suppress(Exception):
                    await channel.close()
            if consumers >= len(processes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(processes)} workers did not consume {queue} in time")
            await asyncio.sleep(0.1)


# --- the Celery baseline ------------------------------------------------------------------


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Warm shutdown of the worker (and its pool), then kill the group if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    # The worker's own session: pool children left after a kill go with it.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _measure_celery(workdir: Path, chains: int) -> dict[str, Any]:
    queue = f"bench.celery.{uuid.uuid4().hex[:10]}"
    broker = AMQP_URL
    celery_chains.configure(broker, queue)
    env = clean_env({celery_chains.BROKER_ENV: broker, celery_chains.QUEUE_ENV: queue})
    command = [
        sys.executable, "-m", "celery", "-A", "bench.celery_chains", "worker",
        "--pool", "prefork", "--concurrency", str(CELERY_CONCURRENCY),
        "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", f"{queue}@%h",
    ]  # fmt: skip
    log = workdir / "celery-worker.log"
    rounds: list[celery_chains.ChainsResult] = []
    cpu_before = cpu_after = None
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        # The warm-up waits for the worker to come up (its first chain is the slow one).
        warmup = celery_chains.run_chains(CELERY_WARMUP_CHAINS, 0, CELERY_TIMEOUT_S)
        if warmup.failures:
            raise RuntimeError(f"the Celery warm-up failed: {warmup.first_problem}")
        cpu_before = machine_cpu_seconds()
        for number in range(CELERY_ROUNDS):
            result = celery_chains.run_chains(chains, (number + 1) * 10_000, CELERY_TIMEOUT_S)
            rounds.append(result)
            _log(
                f"celery round {number + 1}: {chains} chains in {result.seconds:.2f} s, "
                f"{result.chains_per_s:.1f} chains/s, {result.failures} failed"
            )
        cpu_after = machine_cpu_seconds()
    finally:
        _stop_process_group(worker)
        celery_chains.app.close()
        delete_rabbit(queues=[queue], exchanges=[queue])
    seconds = sum(r.seconds for r in rounds)
    failures = sum(r.failures for r in rounds)
    total_chains = chains * len(rounds)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "machine_cpu_s": None if cpu is None else round(cpu, 3),
        "machine_cpu_ms_per_chain": None if cpu is None else round(cpu * 1000 / total_chains, 2),
        "machine_cpu_ms_per_task": None
        if cpu is None
        else round(cpu * 1000 / total_chains / celery_chains.CHAIN_LENGTH, 2),
        "chain_length": celery_chains.CHAIN_LENGTH,
        "chains_per_round": chains,
        "rounds": [
            {
                "seconds": round(r.seconds, 3),
                "chains_per_s": round(r.chains_per_s, 2),
                "failures": r.failures,
                "first_problem": r.first_problem,
            }
            for r in rounds
        ],
        "chains": chains * len(rounds),
        "seconds": round(seconds, 3),
        "chains_per_s": round(chains * len(rounds) / seconds, 2) if seconds else 0.0,
        "median_round_chains_per_s": round(median(r.chains_per_s for r in rounds), 2)
        if rounds
        else 0.0,
        "failures": failures,
        "valid": failures == 0 and len(rounds) == CELERY_ROUNDS,
        "worker": " ".join(command[2:]),
        "result_backend": "rpc://",
        "broker": "the pipeline's RabbitMQ, a queue and exchange of the run's own",
    }


def _measure_durable(workdir: Path, chains: int) -> dict[str, Any]:
    """The textbook durable chains (``bench/durable_chains.py``), in as many worker
    processes as Celery's pool, measured as Celery's chains are."""
    tag = uuid.uuid4().hex[:10]
    queue, table = f"bench.durable.{tag}", f"bench_durable_{tag}"
    durable_chains.create_table(POSTGRES_URL, table)
    command = [sys.executable, "-m", "bench.durable_chains", "worker", "--amqp", AMQP_URL]
    command += ["--postgres", POSTGRES_URL, "--table", table, "--queue", queue]
    workers: list[subprocess.Popen[bytes]] = []
    rounds: list[durable_chains.ChainsResult] = []
    cpu_before = cpu_after = None
    try:
        for number in range(CELERY_CONCURRENCY):
            with (workdir / f"durable-worker-{number}.log").open("wb") as out:
                worker = subprocess.Popen(
                    command, cwd=PROJECT_DIR, env=clean_env({}), stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            workers.append(worker)

        def chains_from(first: int, count: int) -> durable_chains.ChainsResult:
            run = durable_chains.run_chains(AMQP_URL, queue, count, first, CELERY_TIMEOUT_S)
            return asyncio.run(run)

        warmup = chains_from(0, CELERY_WARMUP_CHAINS)  # also waits for the workers to be up
        if warmup.missing:
            raise RuntimeError(f"the durable chains' warm-up lost {warmup.missing} chains")
        cpu_before = machine_cpu_seconds()
        for number in range(CELERY_ROUNDS):
            result = chains_from((number + 1) * 10_000, chains)
            rounds.append(result)
            _log(
                f"durable chains round {number + 1}: {chains} chains in {result.seconds:.2f} s, "
                f"{result.chains_per_s:.1f} chains/s, {result.missing} missing"
            )
        cpu_after = machine_cpu_seconds()
    finally:
        for worker in workers:
            _stop_process_group(worker)
        delete_rabbit(queues=[queue, durable_chains.done_queue(queue)], exchanges=[])
        durable_chains.drop_table(POSTGRES_URL, table)
    return _chains_summary(rounds, chains, cpu_before, cpu_after, durable_chains.CHAIN_LENGTH) | {
        "workers": CELERY_CONCURRENCY,
        "step": "one PostgreSQL commit, one confirmed persistent publish, then the ack",
    }


def _measure_embedded(workdir: Path, chains: int) -> dict[str, Any]:
    """The embedded stack's floor (``bench/embedded_chains.py``): textbook durable chains in
    this one process on a SQLite file, measured in rounds as Celery's chains are."""
    path = workdir / f"embedded-chains-{uuid.uuid4().hex[:10]}.db"
    warmup = embedded_chains.run_chains(path, CELERY_WARMUP_CHAINS, 0)
    if warmup.missing:
        raise RuntimeError(f"the embedded chains' warm-up lost {warmup.missing} steps")
    rounds: list[embedded_chains.ChainsResult] = []
    cpu_before = machine_cpu_seconds()
    for number in range(CELERY_ROUNDS):
        result = embedded_chains.run_chains(path, chains, (number + 1) * 10_000)
        rounds.append(result)
        _log(
            f"embedded chains round {number + 1}: {chains} chains in {result.seconds:.2f} s, "
            f"{result.chains_per_s:.1f} chains/s, {result.missing} steps missing"
        )
    cpu_after = machine_cpu_seconds()
    return _chains_summary(rounds, chains, cpu_before, cpu_after, embedded_chains.CHAIN_LENGTH) | {
        "consumers": embedded_chains.CONSUMERS,
        "step": "one SQLite commit (WAL, synchronous=FULL) in a worker thread, then the hand-on",
    }


def _chains_summary(
    rounds: list[Any], chains: int, cpu_before: float | None, cpu_after: float | None, length: int
) -> dict[str, Any]:
    """A chain baseline's rounds (each with ``seconds``, ``chains_per_s``, ``missing``) as
    the JSON reports them; valid when every round ran and nothing went missing."""
    seconds = sum(r.seconds for r in rounds)
    total = chains * len(rounds)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    missing = sum(r.missing for r in rounds)
    return {
        "machine_cpu_ms_per_chain": None if cpu is None else round(cpu * 1000 / total, 2),
        "chain_length": length,
        "chains_per_round": chains,
        "rounds": [
            {"seconds": round(r.seconds, 3), "chains_per_s": round(r.chains_per_s, 2)}
            for r in rounds
        ],
        "chains": total,
        "seconds": round(seconds, 3),
        "chains_per_s": round(total / seconds, 2) if seconds else 0.0,
        "missing": missing,
        "valid": missing == 0 and len(rounds) == CELERY_ROUNDS,
    }


# --- preflight, report --------------------------------------------------------------------


def _targets(
    rows: list[dict[str, Any]], celery_rate: float, floor_steps_per_s: dict[str, float | None]
) -> dict[str, Any]:
    """The verdict on each targeted row; ``floor_steps_per_s``: the steps per second of the
    bare durable chains of each backend (production: ``durable_chains``, embedded:
    ``embedded_chains``)."""
    target: dict[str, Any] = {}
    for row in rows:
        ratio = row["items_per_s"] / celery_rate if celery_rate else None
        wanted = TARGETS[row["batching"]]
        row["ratio_to_celery"] = None if ratio is None else round(ratio, 3)
        # Per step: a batch against a Celery task (a chain is CHAIN_LENGTH tasks).
        tasks_per_s = celery_rate * celery_chains.CHAIN_LENGTH
        row["steps_ratio_to_celery_tasks"] = (
            round(row["steps_per_s"] / tasks_per_s, 3) if tasks_per_s else None
        )
        if not row["targeted"]:
            continue  # reported beside the deployed layout, not held to the targets
        target.setdefault(row["case"], {})[row["batching"]] = {
            "items_per_s": row["items_per_s"],
            "celery_chains_per_s": celery_rate,
            "ratio": row["ratio_to_celery"],
            "target": wanted,
            "met": ratio is not None and ratio >= wanted,
            "floor": _floor(row, celery_rate, floor_steps_per_s.get(row["backend"])),
        }
    return target


def _floor(
    row: dict[str, Any], celery_rate: float, steps_per_s: float | None
) -> dict[str, Any] | None:
    """What the bare durable mechanism of the row's backend could carry of this case: its
    chains' steps per second over the case's batches per keyword (a batch is one durable
    step), as keywords/s and as a multiple of Celery. The chains' steps run in parallel
    without a stage ever waiting for another and do nothing but commit (and, on RabbitMQ,
    publish and ack), so this is an upper bound."""
    if not steps_per_s or not celery_rate:
        return None
    steps_per_item = row["batches"] / row["keywords"]
    items_per_s = steps_per_s / steps_per_item
    return {
        "steps_per_item": round(steps_per_item, 2),
        "items_per_s": round(items_per_s, 1),
        "ratio": round(items_per_s / celery_rate, 3),
        "excludes_target": items_per_s / celery_rate < TARGETS[row["batching"]],
    }


def _steps_per_s(chains: dict[str, Any] | None, length: int) -> float | None:
    return chains["chains_per_s"] * length if chains and chains["valid"] else None


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _table(
    rows: list[dict[str, Any]],
    celery: dict[str, Any] | None,
    durable: dict[str, Any] | None,
    embedded: dict[str, Any] | None,
) -> str:
    header = (
        f"{'stack (layout)':<34} {'batch sizes':<12} {'keywords':>8} {'batches':>8} "
        f"{'seconds':>8} {'items/s':>8} {'min-max':>13} {'ms/batch':>9} {'cpu ms/item':>12} "
        f"{'x celery':>9} {'target':>9} {'x tasks':>8}  status"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        met = (
            row["ratio_to_celery"] is not None
            and row["ratio_to_celery"] >= TARGETS[row["batching"]]
        )
        verdict = f"{'' if met else 'NOT '}>={TARGETS[row['batching']]:g}"
        if not row["targeted"]:
            verdict = "(n/a)"
        spread = f"{row['items_per_s_min']:.1f}-{row['items_per_s_max']:.1f}"
        lines.append(
            f"{row['case']:<34} {row['batching'].replace('_', ' '):<12} {row['keywords']:>8} "
            f"{row['batches']:>8} {row['elapsed_s']:>8.1f} {row['items_per_s']:>8.2f} "
            f"{spread:>13} {row['ms_per_batch']:>9.1f} "
            f"{_fmt(row['machine_cpu_ms_per_item'], '.1f'):>12} "
            f"{_fmt(row['ratio_to_celery'], '.3f'):>9} {verdict:>9} "
            f"{_fmt(row['steps_ratio_to_celery_tasks'], '.3f'):>8}  {row['status']}"
        )
    if celery is not None:
        rounds = f"{len(celery['rounds'])}x{celery['chains_per_round']}"
        rates = [r["chains_per_s"] for r in celery["rounds"]]
        spread = f"{min(rates):.1f}-{max(rates):.1f}" if rates else "-"
        lines.append(
            f"{'celery (2 pool processes)':<34} {'7-task chain':<12} {rounds:>8} {'-':>8} "
            f"{celery['seconds']:>8.1f} {celery['chains_per_s']:>8.2f} {spread:>13} {'-':>9} "
            f"{_fmt(celery['machine_cpu_ms_per_chain'], '.1f'):>12} {'1':>9} "
            f"{'':>9} {'1':>8}  {'ok' if celery['valid'] else 'FAILED'} (chains/s; median round "
            f"{celery['median_round_chains_per_s']:.1f}; cpu ms per chain)"
        )
    for label, chains, step in (
        ("durable chains (2 processes)", durable, "a commit, a confirmed publish, an ack"),
        ("embedded chains (1 process)", embedded, "a SQLite commit, then the hand-on"),
    ):
        if chains is None:
            continue
        rounds = f"{len(chains['rounds'])}x{chains['chains_per_round']}"
        rates = [r["chains_per_s"] for r in chains["rounds"]]
        spread = f"{min(rates):.1f}-{max(rates):.1f}" if rates else "-"
        ratio = chains["chains_per_s"] / celery["chains_per_s"] if celery else None
        lines.append(
            f"{label:<34} {'7-step chain':<12} {rounds:>8} {'-':>8} "
            f"{chains['seconds']:>8.1f} {chains['chains_per_s']:>8.2f} {spread:>13} "
            f"{'-':>9} {_fmt(chains['machine_cpu_ms_per_chain'], '.1f'):>12} "
            f"{_fmt(ratio, '.3f'):>9} {'':>9} {_fmt(ratio, '.3f'):>8}  "
            f"{'ok' if chains['valid'] else 'FAILED'} (chains/s; each step {step})"
        )
    lines.append(
        f"items/s: the median of {REPEATS} runs of each case (min-max: all of them); cpu "
        "ms/item: busy CPU time of the whole machine (every process, PostgreSQL and RabbitMQ "
        "included) per keyword of the median run, per chain for Celery; x tasks: steps (batches) "
        "per second over Celery's tasks per second, the rate of one durable step against one "
        "task (a keyword is 12 steps at batch size 1, a chain 7 tasks)"
    )
    lines += [
        "",
        "time in each phase of this process, summed over batches, per batch (batches run side "
        "by side, so phases overlap; n/a: timed in the worker processes, not here)",
    ]
    sub = (
        f"{'stack (layout)':<34} {'batch sizes':<12} {'advance':>8} {'is_due':>8} {'stage':>8} "
        f"{'record':>8} {'loads':>8} {'load/call':>10} {'saves':>8} {'events':>7}"
    )
    lines += [sub, "-" * len(sub)]
    for row in rows:
        parts = row["breakdown_ms_per_batch"]
        lines.append(
            f"{row['case']:<34} {row['batching'].replace('_', ' '):<12} "
            + " ".join(f"{_fmt(parts[phase], '.1f'):>8}" for phase in PHASES)
            + f" {row['aggregate_loads']['ms_per_batch']:>8.1f} "
            f"{row['aggregate_loads']['ms_per_call']:>10.2f} "
            f"{row['event_saves']['ms_per_batch']:>8.1f} {row['run_events']:>7}"
        )
    return "\n".join(lines)


def run(settings: read_endpoints.Settings) -> int:
    """Run the pipeline benchmark; prints the table, writes the JSON; 1 if invalid.

    Of the shared command-line settings only ``output`` applies here."""
    output = settings.output
    began = time.perf_counter()
    load_before = os.getloadavg()
    problems = unreachable()
    rows: list[dict[str, Any]] = []
    celery: dict[str, Any] | None = None
    durable: dict[str, Any] | None = None
    embedded: dict[str, Any] | None = None
    if not problems:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            workdir = Path(tmp)
            _log(f"celery baseline: {CELERY_ROUNDS} rounds of {BATCH_1_KEYWORDS} chains")
            try:
                celery = _measure_celery(workdir, BATCH_1_KEYWORDS)
            except Exception as error:  # noqa: BLE001 - reported; the run is invalid
                problems.append(f"celery baseline failed: {error!r}")
                _log((workdir / "celery-worker.log").read_text(errors="replace")[-3000:])
            _log(f"durable chains baseline: {CELERY_ROUNDS} rounds of {BATCH_1_KEYWORDS} chains")
            try:
                durable = _measure_durable(workdir, BATCH_1_KEYWORDS)
            except Exception as error:  # noqa: BLE001 - reported; the run is invalid
                problems.append(f"durable chains baseline failed: {error!r}")
            _log(f"embedded chains baseline: {CELERY_ROUNDS} rounds of {BATCH_1_KEYWORDS} chains")
            try:
                embedded = _measure_embedded(workdir, BATCH_1_KEYWORDS)
            except Exception as error:  # noqa: BLE001 - reported; the run is invalid
                problems.append(f"embedded chains baseline failed: {error!r}")
            for case in _cases():
                try:
                    runs = [_measure_case(case, workdir) for _ in range(REPEATS)]
                    rows.append(_median_run(runs))
                except Exception as error:  # noqa: BLE001 - reported; the run is invalid
                    problems.append(f"{case.name} {case.batching} failed: {error!r}")
    if celery is not None and not celery["valid"]:
        first = next((r["first_problem"] for r in celery["rounds"] if r["first_problem"]), None)
        problems.append(f"celery: {celery['failures']} chains failed ({first})")
    if durable is not None and not durable["valid"]:
        problems.append(f"durable chains: {durable['missing']} chains did not come back")
    if embedded is not None and not embedded["valid"]:
        problems.append(f"embedded chains: {embedded['missing']} steps were not committed")
    problems += [
        f"{row['case']} {row['batching']}: the run did not complete ({row['status']}; "
        f"{row['error']})"
        for row in rows
        if not row["valid"]
    ]
    floors = {
        "production": _steps_per_s(durable, durable_chains.CHAIN_LENGTH),
        "embedded": _steps_per_s(embedded, embedded_chains.CHAIN_LENGTH),
    }
    target = _targets(rows, celery["chains_per_s"] if celery and celery["valid"] else 0.0, floors)
    valid = not problems and len(rows) == len(_cases())
    result = {
        "benchmark": "pipeline",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "valid": valid,
        "problems": problems,
        "settings": {
            "ai_provider": "free",
            "stage_delays_s": 0,
            "batch_size_1": {"keywords": BATCH_1_KEYWORDS, "config": BATCH_1_CONFIG},
            "default": {"keywords": DEFAULT_KEYWORDS, "config": DEFAULT_CONFIG},
            "embedded": "SQLite in a fresh temp data dir, in-process work bus",
            "production": "PostgreSQL in a fresh schema + RabbitMQ (own queue prefix, exchange)",
            "roles": "this process: the orchestrator and the projector thread; the stage "
            "workers too, or `automation worker` processes (worker_processes in each row)",
            "worker_processes": WORKER_PROCESSES,
            "run_timeout_s": RUN_TIMEOUT_S,
            "celery_rounds": CELERY_ROUNDS,
            "repeats": REPEATS,
            "machine_cpu": "busy CPU time of the whole machine (every process, PostgreSQL and "
            "RabbitMQ included) over a case's timed run, or over Celery's measured rounds",
            "celery_concurrency": CELERY_CONCURRENCY,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "results": rows,
        "celery": celery,
        "durable_chains": durable,
        "embedded_chains": embedded,
        "target": target,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")

    print(_table(rows, celery, durable, embedded))
    print()
    for case_name, verdicts in target.items():
        for batching, verdict in verdicts.items():
            print(
                f"target {case_name} {batching.replace('_', ' ')}: items/s >= "
                f"{verdict['target']:g}x celery chains/s: {'met' if verdict['met'] else 'NOT met'}"
                f" ({_fmt(verdict['ratio'], '.3f')}x)"
            )
            floor = verdict["floor"]
            if floor is not None:
                print(
                    f"  floor: {FLOOR_CHAINS[case_name.split()[0]]} chains' steps/s over "
                    f"{floor['steps_per_item']:g} steps "
                    f"per keyword = {floor['items_per_s']:g} keywords/s = "
                    f"{floor['ratio']:.3f}x celery"
                    + (": the target is beyond it" if floor["excludes_target"] else "")
                )
    for problem in problems:
        print(f"INVALID: {problem}")
    print(f"written: {output} ({result['elapsed_s']} s)")
    return 0 if valid else 1
