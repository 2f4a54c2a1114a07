"""Tamper evidence: a run's stored events carry a hash chain, and verify finds a run whose
stored events were altered or removed."""

from __future__ import annotations

import subprocess
import sys
from uuid import UUID

from automation.bootstrap import Services
from automation.config import Settings
from automation.domain.estimate import PendingWork
from tests.conftest import settings_env


def runs(services: Services, count: int) -> list[UUID]:
    app = services.app
    account_id, _ = app.open_account("Acme", 100_000)
    site = app.register_site(account_id, "Site", "UTC").value.id
    made = []
    for _ in range(count):
        run = app.start_run(account_id, site, PendingWork(keywords=5)).value.id
        app.pause_run(account_id, run)
        app.resume_run(account_id, run)
        app.cancel_run(account_id, run)
        made.append(run)
    return made


def sql_on_events(services: Services, statement: str, run_id: UUID) -> int:
    """Change the event store behind the application's back, as an intruder would."""
    table = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    key: object = run_id.hex if not services.settings.database_url else run_id
    text = statement.format(table=table)
    if services.settings.database_url:
        import psycopg

        schema = services.settings.database_schema
        with psycopg.connect(services.settings.database_url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            return conn.execute(text.replace("?", "%s"), (key,)).rowcount
    import sqlite3

    db = sqlite3.connect(services.settings.automation_data_dir / "events.db")
    with db:
        changed = db.execute(text, (key,)).rowcount
    db.close()
    return changed


def test_untouched_runs_have_unbroken_seals(services: Services) -> None:
    made = runs(services, 3)
    assert services.app.broken_seals() == []
    _, account_id = services.app.owner_of(made[0])
    assert account_id is not None
    events = services.app.run_events(account_id, made[0])
    assert all(len(e["chain"]) == 64 for e in events)
    assert len({e["chain"] for e in events}) == len(events)


def test_an_altered_event_breaks_its_runs_seal_and_verify_says_so(
    services: Services, settings: Settings
) -> None:
    made = runs(services, 3)
    victim = made[1]
    if settings.database_url:
        statement = (
            "UPDATE {table} SET state = convert_to(replace(convert_from(state, 'UTF8'),"
            " '\"manual\"', '\"scheduled\"'), 'UTF8') "
            "WHERE originator_id = ? AND originator_version = 1"
        )
    else:
        statement = (
            "UPDATE {table} SET state = CAST(REPLACE(CAST(state AS TEXT), "
            "'\"manual\"', '\"scheduled\"') AS BLOB) "
            "WHERE originator_id = ? AND originator_version = 1"
        )
    assert sql_on_events(services, statement, victim) == 1
    broken = services.app.broken_seals()
    assert [(b.run_id, b.version) for b in broken] == [(victim, 1)]
    result = subprocess.run(
        [sys.executable, "-m", "automation.cli", "projections", "verify"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert str(victim) in result.stdout


def test_a_removed_event_breaks_the_seal_of_the_one_after_it(services: Services) -> None:
    made = runs(services, 2)
    assert (
        sql_on_events(
            services,
            "DELETE FROM {table} WHERE originator_id = ? AND originator_version = 2",
            made[0],
        )
        == 1
    )
    assert [(b.run_id, b.version) for b in services.app.broken_seals()] == [(made[0], 3)]
