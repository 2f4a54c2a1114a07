"""``automation audit``: replay a run's timeline; export it and import it elsewhere."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from automation import audit_cli
from automation.bootstrap import Services, build
from automation.config import Settings
from automation.domain.estimate import PendingWork
from tests.conftest import drop_schema


@pytest.fixture
def elsewhere(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """An empty store of the same backend."""
    if not settings.database_url:
        yield Settings(automation_data_dir=tmp_path / "elsewhere")
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield settings.model_copy(update={"database_schema": schema})
    drop_schema(settings.database_url, schema)


def a_run(services: Services) -> uuid.UUID:
    app = services.app
    account_id, _ = app.open_account("Acme", 1000)
    site = app.register_site(account_id, "Site", "UTC").value.id
    run_id: uuid.UUID = app.start_run(account_id, site, PendingWork(keywords=9)).value.id
    for step in (app.pause_run, app.resume_run, app.cancel_run):
        step(account_id, run_id)
    return run_id


def test_replay_shows_the_timeline_with_the_state_after_each_event(
    services: Services, settings: Settings
) -> None:
    run_id = a_run(services)
    out = io.StringIO()
    assert audit_cli.replay(settings, run_id, out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == [
        "RunStarted",
        "RunPaused",
        "RunResumed",
        "RunCancelled",
    ]
    assert [line.split("status=")[1].split()[0] for line in lines] == [
        "running",
        "paused",
        "running",
        "cancelled",
    ]
    assert audit_cli.replay(settings, uuid.uuid4(), io.StringIO()) == 2


def test_an_exported_run_imports_elsewhere_as_the_same_run(
    services: Services, settings: Settings, elsewhere: Settings
) -> None:
    run_id = a_run(services)
    exported = io.StringIO()
    assert audit_cli.export(settings, run_id, exported) == 0
    assert audit_cli.import_(elsewhere, io.StringIO(exported.getvalue())) == 0
    before, after = io.StringIO(), io.StringIO()
    audit_cli.replay(settings, run_id, before)
    audit_cli.replay(elsewhere, run_id, after)
    assert after.getvalue() == before.getvalue()
    target = build(elsewhere)
    try:
        account_id = services.app.run(services.app.owner_of(run_id)[1], run_id).account_id
        original = services.app.run_state(account_id, run_id, None)
        assert target.app.run_state(account_id, run_id, None) == original
    finally:
        target.close()
    # A second import changes nothing, and says so.
    assert audit_cli.import_(elsewhere, io.StringIO(exported.getvalue())) == 1
    assert audit_cli.import_(elsewhere, io.StringIO("not json\n")) == 2
