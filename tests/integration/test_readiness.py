"""/readyz: ready only while the store, the bus and the read models are."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from automation.api.routes.health import readiness
from automation.bootstrap import build
from automation.config import Settings
from automation.domain.estimate import PendingWork
from tests.clock import MovableClock


def test_ready_when_everything_answers(settings: Settings) -> None:
    services = build(settings)
    try:
        services.projector.catch_up()
        report = readiness(services)
        assert report["ready"] is True
        assert set(report["checks"]) == {"store", "projections", "bus"}  # type: ignore[arg-type]
    finally:
        services.close()


def test_not_ready_while_a_read_model_lags_too_far(settings: Settings) -> None:
    services = build(settings.model_copy(update={"ready_max_lag": 2}))
    try:
        account_id, _ = services.app.open_account("Acme", 1000)
        site = services.app.register_site(account_id, "Site", "UTC").value.id
        services.app.start_run(account_id, site, PendingWork())
        report = readiness(services)  # nothing projected yet: the log is several events ahead
        assert report["ready"] is False
        assert report["checks"]["projections"]["ok"] is False  # type: ignore[index]
        services.projector.catch_up()
        assert readiness(services)["ready"] is True
    finally:
        services.close()


def test_not_ready_while_rabbitmq_cannot_be_reached(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"amqp_url": "amqp://guest:guest@127.0.0.1:9/"})
    services = build(unreachable)
    try:
        assert services.rabbit is not None

        async def try_to_connect() -> None:
            assert services.rabbit is not None
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                await asyncio.wait_for(services.rabbit.connection(), 3)

        asyncio.run(try_to_connect())
        services.projector.catch_up()
        report = readiness(services)
        assert report["ready"] is False
        assert report["checks"]["bus"] == {"ok": False, "kind": "amqp"}  # type: ignore[index]
    finally:
        services.close()


def test_lag_is_reported_in_events_and_seconds(settings: Settings) -> None:
    clock = MovableClock()
    services = build(settings, clock=clock)
    try:
        account_id, _ = services.app.open_account("Acme", 1000)
        services.app.register_site(account_id, "Site", "UTC")
        clock.set(datetime.now(UTC) + timedelta(seconds=90))
        projections = readiness(services)["checks"]["projections"]  # type: ignore[index]
        assert min(projections["lag_events"].values()) >= 4
        assert 85 <= min(projections["lag_seconds"].values()) <= 100
        assert b'automation_projection_lag_seconds{projection="history"}' in generate_latest()
        services.projector.catch_up()
        projections = readiness(services)["checks"]["projections"]  # type: ignore[index]
        assert set(projections["lag_events"].values()) == {0}
        assert set(projections["lag_seconds"].values()) == {0.0}
    finally:
        services.close()
