"""The pipeline benchmark's baseline: Celery chains of seven trivial tasks.

The worker is ``celery -A bench.celery_chains worker``, started by ``bench.pipeline`` with
``BENCH_CELERY_BROKER_URL`` and ``BENCH_CELERY_QUEUE`` in its environment; the submitting
side calls ``configure`` with the same values. Each task returns its input, so a chain
costs only what Celery itself does per task: publish, deliver, run in the prefork pool,
ack, send the result (``rpc://``: a reply message to the caller) and start the next task.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery, chain  # type: ignore[import-untyped]

BROKER_ENV = "BENCH_CELERY_BROKER_URL"
QUEUE_ENV = "BENCH_CELERY_QUEUE"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_QUEUE = "bench.celery"
CHAIN_LENGTH = 7

app = Celery("bench_celery_chains")


def configure(broker_url: str, queue: str) -> None:
    """Point the app (worker or submitter) at a broker and a queue of the run's own."""
    app.conf.update(
        broker_url=broker_url,
        result_backend="rpc://",
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # No remote-control (pidbox) exchange: the run leaves nothing behind on the broker.
        worker_enable_remote_control=False,
    )


configure(os.environ.get(BROKER_ENV, DEFAULT_BROKER), os.environ.get(QUEUE_ENV, DEFAULT_QUEUE))


@app.task(name="bench.step")  # type: ignore[untyped-decorator]
def step(value: int) -> int:
    """One trivial stage: the input, unchanged."""
    return value


@dataclass(frozen=True)
class ChainsResult:
    chains: int
    seconds: float
    failures: int
    first_problem: str | None

    @property
    def chains_per_s(self) -> float:
        return self.chains / self.seconds if self.seconds > 0 else 0.0


def run_chains(count: int, first_value: int, timeout_s: float) -> ChainsResult:
    """Submit ``count`` chains at once; time until every chain's result is back."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    results: list[tuple[int, Any]] = []
    for value in range(first_value, first_value + count):
        steps = [step.s(value)] + [step.s() for _ in range(CHAIN_LENGTH - 1)]
        results.append((value, chain(*steps).apply_async()))
    failures = 0
    first_problem: str | None = None
    for value, result in results:
        try:
            answer = result.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception as error:  # noqa: BLE001 - a timeout or a task error: the run is invalid
            answer = error
        if answer != value:
            failures += 1
            first_problem = first_problem or f"chain {value} answered {answer!r}"
    return ChainsResult(count, time.perf_counter() - started, failures, first_problem)
