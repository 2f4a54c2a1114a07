"""Chaos on the production stack: every role a separate OS process (``automation api``,
``projector``, ``orchestrator``, ``worker``, ``relay``, ``scheduler``) over PostgreSQL and
RabbitMQ, and one fault in the middle of a run.

After each fault the run completes (the seconds from the fault's end to the run's next
stored event and to its completion are measured and reported), makes exactly what an
undisturbed run makes, records every batch once, charges exactly what it used
(balance delta = Σ CreditsConsumed = total_credits_used), its views equal a rebuild
(``automation projections verify``), and a queue bound to the events exchange before
anything started holds every stored event, duplicates identical, each aggregate's first
arrivals in version order. The watchdog is set to an hour, so it cannot be what rescues a
run."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.chaos import Roles, Stack
from tests.support.chaos_exchange import ExchangeQueue, check_published
from tests.support.chaos_faults import rabbitmq_stopped, terminate_connections
from tests.support.chaos_ledger import (
    CONFIG,
    KEYWORDS,
    check_books,
    eventually,
    ok,
    open_account,
    prepared_site,
    reached,
    recovery,
    verify_views,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.rabbitmq]
Fault = Callable[[Roles, Stack, Callable[[], None]], None]


def killed(label: str) -> Fault:
    def fault(roles: Roles, stack: Stack, ended: Callable[[], None]) -> None:
        roles.kill_and_restart(label, ended)

    return fault


def worker_stopped(roles: Roles, stack: Stack, ended: Callable[[], None]) -> None:
    # SIGTERM: the worker lets its batches in flight finish (or hands them back) and
    # exits cleanly; the other worker carries on.
    roles["worker0"].signal(signal.SIGTERM)
    assert roles["worker0"].process is not None
    assert roles["worker0"].process.returncode == 0, roles["worker0"].tail()
    ended()


def broker_restarted(roles: Roles, stack: Stack, ended: Callable[[], None]) -> None:
    with rabbitmq_stopped(ended):
        # Wait until the service has noticed: the API is not ready without its broker.
        eventually(
            lambda: httpx.get(f"{roles.http.url}/readyz", timeout=5).status_code == 503 or None,
            "the API noticing the broker is gone",
            30,
        )


def connections_dropped(roles: Roles, stack: Stack, ended: Callable[[], None]) -> None:
    assert terminate_connections(stack.app_name) > 0
    ended()


FAULTS: dict[str, tuple[Fault, int]] = {  # the fault, and how many workers run
    "worker killed": (killed("worker0"), 1),
    "orchestrator killed": (killed("orchestrator"), 1),
    "projector killed": (killed("projector"), 1),
    "relay killed": (killed("relay"), 1),
    "worker stopped": (worker_stopped, 2),
    "rabbitmq restarted": (broker_restarted, 1),
    "postgres connections dropped": (connections_dropped, 1),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_run_completes_exactly_once_after_a_fault(
    name: str,
    new_stack: Callable[..., Stack],
    roles_of: Callable[..., Roles],
    undisturbed: Any,
    report: Callable[[str], None],
    postgres_url: str,
    amqp_url: str,
) -> None:
    fault, workers = FAULTS[name]
    stack = new_stack(production=True)
    exchange = ExchangeQueue(stack)
    exchange.bind()  # before anything is published
    roles = roles_of(stack, workers)
    try:
        api = open_account(stack, roles)
        site = prepared_site(api, KEYWORDS, CONFIG, "Chaos")
        run_id = ok(api.run_now(site), 202)["run_id"]
        # Mid-run: stages done and stages to come, a batch with the workers.
        eventually(
            lambda: reached(api, run_id, 3)["batches"] or None, "a batch in flight at stage 3+"
        )
        started = time.monotonic()
        times = recovery(stack, api, run_id, lambda ended: fault(roles, stack, ended))
        report(
            f"next event {times['progress']:.2f} s, completed {times['completed']:.2f} s "
            f"after the fault ended ({time.monotonic() - started:.1f} s with the fault)"
        )
        books = check_books(api, site, run_id, undisturbed)
        verify_views(stack)
        published = check_published(stack, exchange)
        report(
            f"{books['credits']} credits; {published['stored']} events stored, "
            f"{published['messages']} published ({published['duplicates']} duplicates)"
        )
    except BaseException:
        print(roles.logs())
        raise
    finally:
        roles.stop()
        exchange.delete()
