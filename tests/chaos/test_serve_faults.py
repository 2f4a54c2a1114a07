"""Chaos on the embedded default: ``automation serve`` (SQLite, the in-process bus) killed
with SIGKILL at several points of a run, then started again.

After each kill the run completes (the time from the restart is measured and reported),
makes exactly what an undisturbed run makes, records every batch once, charges exactly what
it used, and its views equal a rebuild. The embedded default has no events exchange: its
relay runs only with ``AMQP_URL``, which the production scenarios cover."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.chaos import Roles, Stack
from tests.support.chaos_ledger import (
    AUTOMATION_API,
    CONFIG,
    KEYWORDS,
    check_books,
    events,
    ok,
    open_account,
    prepared_site,
    reached,
    recovery,
    state,
    verify_views,
)

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("when", ["right after run_now", "mid-stage"])
def test_serve_killed_during_a_run_restarts_and_completes_it(
    when: str,
    new_stack: Callable[..., Stack],
    roles_of: Callable[..., Roles],
    undisturbed: Any,
    report: Callable[[str], None],
) -> None:
    stack = new_stack(production=False)
    roles = roles_of(stack)
    api = open_account(stack, roles)
    site = prepared_site(api, KEYWORDS, CONFIG, "Killed")
    run_id = ok(api.run_now(site), 202)["run_id"]
    if when == "mid-stage":
        reached(api, run_id, 3)
    times = recovery(stack, api, run_id, lambda ended: roles.kill_and_restart("serve", ended))
    report(
        f"after the restart: next event {times['progress']:.2f} s, "
        f"completed {times['completed']:.2f} s"
    )

    books = check_books(api, site, run_id, undisturbed)
    verify_views(stack)
    report(f"{books['events']} run events, {books['credits']} credits")


def test_serve_killed_while_paused_keeps_the_run_paused_then_resumes_it(
    new_stack: Callable[..., Stack],
    roles_of: Callable[..., Roles],
    undisturbed: Any,
    report: Callable[[str], None],
) -> None:
    stack = new_stack(production=False)
    roles = roles_of(stack)
    api = open_account(stack, roles)
    site = prepared_site(api, KEYWORDS, CONFIG, "Paused")
    run_id = ok(api.run_now(site), 202)["run_id"]
    reached(api, run_id, 2)
    ok(api.post(f"{AUTOMATION_API}/pause", run_id=run_id))
    serve = roles["serve"]
    serve.signal(signal.SIGKILL)
    serve.start()

    # Paused across the restart: the batches that were in flight may still be recorded,
    # but no new batch is dispatched and the run stays paused.
    run = state(api, run_id)
    assert run["status"] == "paused", run
    dispatched = sum(1 for e in events(api, run_id) if e["type"] == "BatchDispatched")

    def resume(ended: Callable[[], None]) -> None:
        ok(api.post(f"{AUTOMATION_API}/resume", run_id=run_id))
        ended()

    times = recovery(stack, api, run_id, resume)
    report(f"after resume: next event {times['progress']:.2f} s, done {times['completed']:.2f} s")
    assert sum(1 for e in events(api, run_id) if e["type"] == "BatchDispatched") > dispatched

    check_books(api, site, run_id, undisturbed)
    verify_views(stack)
