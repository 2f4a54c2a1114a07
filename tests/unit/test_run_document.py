"""The run document (a JSON fold of a run's stored events) agrees with the aggregate."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from automation.application.app import AutomationApp
from automation.domain.errors import InvalidStateError
from automation.domain.run import AutomationRun
from automation.domain.values import STAGE_NAMES, Stage
from projections import run_document
from projections.run_document import fold, is_run_event

ZONES = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata"), ZoneInfo("America/St_Johns")]
TIMESTAMPS = ("started_at", "paused_at", "resumed_at", "completed_at")
# Control commands are listed several times so that runs mostly stay active for a while.
KINDS = ["pause", "resume", "start_stage", "complete_stage", "consume"] * 3 + [
    "cancel",
    "complete",
    "fail",
]

moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 12, 31),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)
operations = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from([int(s) for s in Stage]),
        st.integers(0, 1000),
        moments,
    ),
    max_size=40,
)


def apply(run: AutomationRun, kind: str, stage: int, amount: int, at: datetime) -> None:
    if kind in ("pause", "resume", "cancel", "complete"):
        getattr(run, kind)(at)
    elif kind == "fail":
        run.fail(f"error {amount}", at)
    elif kind in ("start_stage", "complete_stage"):
        getattr(run, kind)(stage, at)
    else:
        run.consume_credits(stage, amount)


def parsed(value: str | None) -> datetime | None:
    if value is None:
        return None
    assert value.endswith("Z"), value
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0)
    return moment


def in_utc(value: datetime | None) -> datetime | None:
    """The instant in UTC (comparing aware datetimes of two zones is never equal within a
    repeated wall-clock hour, so compare in one zone)."""
    return None if value is None else value.astimezone(UTC)


def assert_agree(doc: dict[str, Any], run: AutomationRun) -> None:
    assert doc["run_id"] == str(run.id)
    assert doc["site_id"] == str(run.site_id)
    assert doc["status"] == run.status.value
    assert doc["current_stage"] == run.current_stage
    for name in TIMESTAMPS:
        assert parsed(doc[name]) == in_utc(getattr(run, name)), name
    assert doc["total_credits_used"] == run.total_credits_used
    assert doc["estimated_credits"] == run.estimated_credits
    assert doc["reserved_credits"] == run.reserved_credits
    assert doc["trigger_type"] == run.trigger_type
    assert doc["error"] == run.error
    assert doc["version"] == run.version
    assert [s["stage"] for s in doc["stages"]] == [int(s) for s in Stage]
    for entry in doc["stages"]:
        stage = run.stages[entry["stage"]]
        assert entry["name"] == STAGE_NAMES[Stage(entry["stage"])]
        assert entry["credits_used"] == stage["credits_used"]
        assert entry["status"] == stage["status"]
    assert sum(s["credits_used"] for s in doc["stages"]) == doc["total_credits_used"]


@settings(max_examples=120, deadline=None)
@given(start=moments, ops=operations, estimated=st.integers(0, 10_000))
def test_the_document_folded_from_stored_events_agrees_with_the_aggregate(
    start: datetime, ops: list[tuple[str, int, int, datetime]], estimated: int
) -> None:
    app = AutomationApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    live = AutomationRun(
        id=uuid4(),
        site_id=uuid4(),
        account_id=uuid4(),
        trigger_type="scheduled",
        config={},
        estimated_credits=estimated,
        reserved_credits=estimated + 1,
        estimate_basis={},
        at=start,
    )
    for kind, stage, amount, at in ops:
        # A command the run refuses appends nothing, so the fold never sees it.
        with contextlib.suppress(InvalidStateError):
            apply(live, kind, stage, amount, at)
    app.save(live)

    stored: list[Any] = list(app.events.get(live.id))
    assert len(stored) == live.version
    doc: dict[str, Any] | None = None
    replayed: Any = None
    for domain_event in stored:
        assert is_run_event(domain_event)
        previous = copy.deepcopy(doc)
        folded = fold(doc, domain_event)
        assert doc == previous, "fold must not change the document it was given"
        assert folded is not None
        doc = folded
        replayed = domain_event.mutate(replayed)
        assert_agree(doc, replayed)
    assert doc is not None
    assert_agree(doc, live)
    assert set(run_document.public(doc)) == set(doc) - {"version"}
    assert run_document.summary(doc)["status"] == live.status.value


def test_fold_ignores_events_before_the_run_started() -> None:
    run = AutomationRun(
        id=uuid4(),
        site_id=uuid4(),
        account_id=uuid4(),
        trigger_type="manual",
        config={},
        estimated_credits=0,
        reserved_credits=0,
        estimate_basis={},
        at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    run.pause(datetime(2027, 1, 1, 1, tzinfo=UTC))
    _started, paused = run.collect_events()
    assert fold(None, paused) is None


def test_timestamps_are_utc_iso_with_z() -> None:
    berlin = datetime(2027, 7, 1, 12, 30, 15, 250_000, tzinfo=ZoneInfo("Europe/Berlin"))
    assert run_document.iso(berlin) == "2027-07-01T10:30:15.250000Z"
    assert run_document.iso(datetime(2027, 1, 1, tzinfo=UTC)) == "2027-01-01T00:00:00Z"
    assert run_document.iso(None) is None
