"""The projector: exactly-once application of events, and a supervisor that keeps it alive."""

from __future__ import annotations

import time
from typing import Any

import pytest

from automation.bootstrap import Services
from automation.domain.estimate import PendingWork
from projections.history import history_body


# The injected death is reported by pytest as an unhandled thread exception: expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_projector_that_dies_is_restarted_and_catches_up(
    services: Services, monkeypatch: Any
) -> None:
    projector = services.projector
    real_catch_up = projector.catch_up
    deaths = []

    def dies_once() -> int:
        if not deaths:
            deaths.append(1)
            raise SystemExit("a thread-killing failure")
        return real_catch_up()

    monkeypatch.setattr(projector, "catch_up", dies_once)
    projector.start(poll_interval=0.1)
    try:
        account_id, _ = services.app.open_account("Acme", 100)
        site = services.app.register_site(account_id, "Site", "UTC").value.id
        services.app.start_run(account_id, site, PendingWork())
        deadline = time.monotonic() + 10
        while projector.position() < (services.app.recorder.max_notification_id() or 0):
            assert time.monotonic() < deadline, "the projector never came back"
            projector.wake()
            time.sleep(0.05)
    finally:
        projector.stop()
    assert projector.restarts == 1
    with services.views.read() as tx:
        assert '"status":"running"' in history_body(tx, site)


def test_two_projectors_apply_every_event_once(services: Services, settings: Any) -> None:
    from automation.bootstrap import build

    other = build(settings)
    try:
        account_id, _ = services.app.open_account("Acme", 10_000)
        site = services.app.register_site(account_id, "Site", "UTC").value.id
        for _ in range(5):
            run = services.app.start_run(account_id, site, PendingWork()).value
            services.app.cancel_run(account_id, run.id)
        import threading

        threads = [
            threading.Thread(target=p.catch_up) for p in (services.projector, other.projector)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with services.views.read() as tx:
            rows = tx.fetchall("SELECT line FROM run_logs")
        # Each run has exactly its two lines (started, cancelled): none applied twice.
        assert len(rows) == 10
    finally:
        other.close()
