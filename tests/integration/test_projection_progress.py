"""A process learns that the read models reached a position whichever process's projector
applied it: a command's answer waits for exactly that (read-your-writes), on every copy of
the API.

Two wired service sets on one store stand for two processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from automation.bootstrap import Services, build
from automation.config import Settings


@pytest.fixture
def other(settings: Settings) -> Iterator[Services]:
    """Another process's services, on the same store and read models."""
    wired = build(settings)
    yield wired
    wired.close()


def test_a_projector_reports_a_position_another_projector_applied(
    services: Services, other: Services
) -> None:
    reported: list[int] = []
    services.projector.on_progress.append(reported.append)
    account_id, _ = other.app.open_account("Acme", 10)
    saved = other.app.grant_credits(account_id, 5)
    assert saved == 15
    other.projector.catch_up()  # the other process applies everything
    last = other.projector.position()
    assert last > 0

    assert services.projector.catch_up() == 0  # nothing left to apply here...
    assert reported == [last]  # ...yet the waiters here learn how far the views are


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_process_without_a_projector_hears_the_position_committed_elsewhere(
    services: Services, other: Services
) -> None:
    assert services.wakeups is not None
    heard: list[int] = []
    arrived = threading.Event()

    def progressed(position: int) -> None:
        heard.append(position)
        arrived.set()

    services.wakeups.progress_listeners.append(progressed)
    services.start_following()  # LISTEN; this process's projector never runs
    assert services.wakeups.listening.wait(10)  # a NOTIFY before LISTEN is not heard

    other.app.open_account("Acme", 10)
    other.projector.catch_up()

    assert arrived.wait(10), "no NOTIFY of the position the other projector committed"
    assert max(heard) == other.projector.position()
    assert not services.projector.is_running()
