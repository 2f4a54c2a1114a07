"""Events written in an older shape still load as today's objects.

``tests/fixtures/run_v1.ndjson`` is a run exported (``automation audit export``) when
RunStarted was at version 1, before it recorded ``reserved_credits``."""

from __future__ import annotations

import io
from pathlib import Path
from uuid import UUID

import orjson

from automation import audit_cli
from automation.bootstrap import Services
from automation.config import Settings
from automation.domain.run import AutomationRun

FIXTURE = Path(__file__).parent.parent / "fixtures" / "run_v1.ndjson"
RUN_ID = UUID("0655a4c9-5f0f-46e2-a567-e12b1c822333")
ACCOUNT_ID = UUID("54e6c4fd-1ccd-4720-b22b-686765f46dd7")


def test_the_fixture_really_is_in_the_old_shape() -> None:
    first = orjson.loads(FIXTURE.read_text().splitlines()[0])
    assert first["topic"].endswith("AutomationRun.RunStarted")
    assert "reserved_credits" not in first["state"]
    assert "class_version" not in first["state"]


def test_a_version_1_run_loads_upcast_to_today(services: Services, settings: Settings) -> None:
    assert audit_cli.import_(settings, io.StringIO(FIXTURE.read_text())) == 0
    run = services.app.repository.get(RUN_ID)
    assert isinstance(run, AutomationRun)
    # Version 1 reserved ceil(estimate x 1.2); the upcaster says so explicitly.
    assert run.estimated_credits == 145
    assert run.reserved_credits == 174
    assert run.status.value == "cancelled"
    version, state = services.app.run_state(ACCOUNT_ID, RUN_ID, 1)
    assert version == 1
    assert (state["reserved_credits"], state["status"]) == (174, "running")
    listed = services.app.run_events(ACCOUNT_ID, RUN_ID)
    assert listed[0]["type"] == "RunStarted"
    assert listed[0]["schema_version"] == 3
    assert listed[0]["data"]["reserved_credits"] == 174
    # Nor did it record what its estimate was based on: version 3 shows an empty basis.
    assert listed[0]["data"]["estimate_basis"] == {}
    # The projections read the old run like a new one.
    services.projector.catch_up()
    from projections.history import run_document

    with services.views.read() as tx:
        document = run_document(tx, RUN_ID)
    assert document is not None
    assert (document["reserved_credits"], document["status"]) == (174, "cancelled")
