"""On PostgreSQL, a save by another process wakes this process's followers through the
recorder's NOTIFY, long before their fallback poll."""

from __future__ import annotations

import time

import pytest

from automation.bootstrap import Services, build
from automation.config import Settings


@pytest.fixture
def backend() -> str:
    return "postgres"


def test_a_save_elsewhere_wakes_the_projector_at_once(
    services: Services, settings: Settings
) -> None:
    services.start_following()
    services.projector.start(poll_interval=60.0)  # the poll alone would take a minute
    other = build(settings)  # another process's application, on the same store
    try:
        services.projector.catch_up()
        before = services.projector.position()
        time.sleep(0.3)  # the LISTEN connection is up
        account_id, _ = other.app.open_account("Elsewhere", 10)
        assert other.app.grant_credits(account_id, 5) == 15
        deadline = time.monotonic() + 5
        while services.projector.position() <= before:
            assert time.monotonic() < deadline, "the NOTIFY did not wake the projector"
            time.sleep(0.02)
    finally:
        other.close()
