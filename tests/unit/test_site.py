"""The Site aggregate: registration, its validated configuration and its one-run lock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.domain.config import SiteConfig
from automation.domain.errors import InvalidValueError, RunInProgressError
from automation.domain.schedule import Schedule
from automation.domain.site import Site

AT = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
BATCH_FIELDS = [f"stage_{n}_batch_size" for n in range(1, 7)]
DELAY_FIELDS = ["within_stage_delay", "between_stage_delay"]
INT_RANGES: dict[str, tuple[int, int]] = {
    **dict.fromkeys(BATCH_FIELDS, (1, 1000)),
    **dict.fromkeys(DELAY_FIELDS, (0, 86400)),
    "scheduled_weekday": (0, 6),
    "scheduled_day_of_month": (1, 31),
}


def new_site(timezone: str = "Europe/Berlin") -> Site:
    site = Site.register(uuid4(), "Trail shoes", timezone, AT)
    site.collect_events()
    return site


def state(site: Site) -> tuple[Any, ...]:
    return (site.version, dict(site.config), site.timezone, site.active_run_id, site.last_run_at)


def names(events: Any) -> list[str]:
    return [type(e).__name__ for e in events]


# --- registration ------------------------------------------------------------------------


def test_register_a_site() -> None:
    account_id = uuid4()
    site = Site.register(account_id, "  Trail shoes ", "America/New_York", AT)
    assert site.account_id == account_id
    assert site.name == "Trail shoes"
    assert site.timezone == "America/New_York"
    assert site.config == SiteConfig().as_dict()
    assert site.settings == SiteConfig()
    assert site.created_at == AT
    assert site.active_run_id is None
    assert site.last_run_at is None
    assert names(site.collect_events()) == ["SiteRegistered"]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin", "Asia/Kolkata", "Pacific/Apia"])
def test_register_accepts_iana_timezones(timezone: str) -> None:
    assert Site.register(uuid4(), "s", timezone, AT).timezone == timezone


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_register_refuses_a_bad_name(name: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        Site.register(uuid4(), name, "UTC", AT)
    assert set(caught.value.fields) == {"name"}


@pytest.mark.parametrize(
    "timezone", ["", "Mars/Olympus_Mons", "Europe/Berlin ", "../etc/passwd", "+02:00"]
)
def test_register_refuses_an_unknown_timezone(timezone: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        Site.register(uuid4(), "Trail shoes", timezone, AT)
    assert set(caught.value.fields) == {"timezone"}


def test_register_reports_name_and_timezone_together() -> None:
    with pytest.raises(InvalidValueError) as caught:
        Site.register(uuid4(), " ", "Nowhere/Land", AT)
    assert set(caught.value.fields) == {"name", "timezone"}
    assert caught.value.code == "invalid_request"
    assert caught.value.details == {"fields": caught.value.fields}


# --- configuration -----------------------------------------------------------------------

GOOD_CHANGES: list[dict[str, Any]] = [
    {"is_enabled": True},
    {"is_enabled": False},
    {"frequency": "daily"},
    {"frequency": "weekly", "scheduled_weekday": 6},
    {"frequency": "monthly", "scheduled_day_of_month": 31},
    {"scheduled_time": "00:00"},
    {"scheduled_time": "23:59"},
    {"scheduled_time": "09:05"},
    {"scheduled_weekday": 0},
    {"scheduled_day_of_month": 1},
    {"stage_1_batch_size": 1},
    {"stage_6_batch_size": 1000},
    {"within_stage_delay": 0},
    {"between_stage_delay": 86400},
    {"timezone": "Asia/Tokyo"},
    {"timezone": "Asia/Tokyo", "is_enabled": True, "stage_3_batch_size": 50},
    {},
]


@pytest.mark.parametrize("changes", GOOD_CHANGES)
def test_update_config_applies_valid_changes(changes: dict[str, Any]) -> None:
    site = new_site()
    site.update_config(dict(changes), AT)
    expected = {k: v for k, v in changes.items() if k != "timezone"}
    for name, value in expected.items():
        assert site.config[name] == value
        assert getattr(site.settings, name) == value
    untouched = SiteConfig().as_dict()
    for name in set(untouched) - set(expected):
        assert site.config[name] == untouched[name]
    assert site.timezone == changes.get("timezone", "Europe/Berlin")
    assert names(site.collect_events()) == ["ConfigUpdated"]


def test_update_config_does_not_change_the_callers_dict() -> None:
    site = new_site()
    changes = {"timezone": "UTC", "is_enabled": True}
    site.update_config(changes, AT)
    assert changes == {"timezone": "UTC", "is_enabled": True}


BAD_VALUES: list[tuple[str, Any]] = [
    *[(name, value) for name in BATCH_FIELDS for value in (0, 1001, -1)],
    *[(name, value) for name in DELAY_FIELDS for value in (-1, 86401)],
    ("scheduled_weekday", -1),
    ("scheduled_weekday", 7),
    ("scheduled_day_of_month", 0),
    ("scheduled_day_of_month", 32),
    ("frequency", "hourly"),
    ("frequency", "Daily"),
    ("frequency", ""),
    ("frequency", None),
    ("frequency", 1),
    ("scheduled_time", "24:00"),
    ("scheduled_time", "12:60"),
    ("scheduled_time", "2:00"),
    ("scheduled_time", "02:0"),
    ("scheduled_time", "0200"),
    ("scheduled_time", " 02:00"),
    ("scheduled_time", "02:00 "),
    ("scheduled_time", "02:00\n"),
    ("scheduled_time", "02:00:00"),
    ("scheduled_time", ""),
    ("scheduled_time", 200),
    ("scheduled_time", None),
    ("is_enabled", 1),
    ("is_enabled", 0),
    ("is_enabled", "true"),
    ("is_enabled", None),
    ("stage_1_batch_size", True),
    ("stage_2_batch_size", False),
    ("within_stage_delay", True),
    ("scheduled_weekday", True),
    ("scheduled_day_of_month", True),
    ("stage_1_batch_size", 20.0),
    ("stage_1_batch_size", "20"),
    ("stage_1_batch_size", None),
    ("timezone", "Nowhere/Land"),
    ("timezone", ""),
    ("timezone", None),
    ("timezone", 5),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_update_config_refuses_a_bad_value_and_appends_nothing(field: str, value: Any) -> None:
    site = new_site()
    before = state(site)
    with pytest.raises(InvalidValueError) as caught:
        site.update_config({field: value}, AT)
    assert set(caught.value.fields) == {field}
    assert site.collect_events() == []
    assert state(site) == before


@pytest.mark.parametrize("field", ["colour", "stage_7_batch_size", "name", "active_run_id"])
def test_update_config_refuses_unknown_fields(field: str) -> None:
    site = new_site()
    before = state(site)
    with pytest.raises(InvalidValueError) as caught:
        site.update_config({field: 1}, AT)
    assert caught.value.fields == {field: "unknown field"}
    assert state(site) == before


def test_update_config_reports_every_bad_field_together() -> None:
    site = new_site()
    before = state(site)
    changes = {
        "is_enabled": 1,
        "frequency": "yearly",
        "scheduled_time": "25:00",
        "scheduled_weekday": 7,
        "scheduled_day_of_month": 0,
        "stage_1_batch_size": 0,
        "stage_4_batch_size": True,
        "within_stage_delay": -5,
        "between_stage_delay": 86401,
        "timezone": "Atlantis/Central",
        "speed": "fast",
        "stage_2_batch_size": 5,  # a good one: still nothing is applied
    }
    with pytest.raises(InvalidValueError) as caught:
        site.update_config(changes, AT)
    assert set(caught.value.fields) == set(changes) - {"stage_2_batch_size"}
    assert site.collect_events() == []
    assert state(site) == before


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(sorted(INT_RANGES)), value=st.integers(-100_000, 100_000))
def test_whole_number_fields_accept_exactly_their_range(field: str, value: int) -> None:
    site = new_site()
    before = state(site)
    low, high = INT_RANGES[field]
    if low <= value <= high:
        site.update_config({field: value}, AT)
        assert site.config[field] == value
        assert names(site.collect_events()) == ["ConfigUpdated"]
    else:
        with pytest.raises(InvalidValueError) as caught:
            site.update_config({field: value}, AT)
        assert set(caught.value.fields) == {field}
        assert site.collect_events() == []
        assert state(site) == before


@settings(max_examples=200, deadline=None)
@given(hour=st.integers(0, 99), minute=st.integers(0, 99))
def test_scheduled_time_accepts_exactly_hh_mm(hour: int, minute: int) -> None:
    site = new_site()
    value = f"{hour:02d}:{minute:02d}"
    if hour <= 23 and minute <= 59:
        site.update_config({"scheduled_time": value}, AT)
        assert site.settings.scheduled_time == value
    else:
        with pytest.raises(InvalidValueError):
            site.update_config({"scheduled_time": value}, AT)


@settings(max_examples=200, deadline=None)
@given(
    hour=st.integers(0, 30),
    minute=st.integers(0, 70),
    before=st.sampled_from(["", " ", "\n", "0"]),
    after=st.sampled_from(["", " ", "\n", "\t", ":00", "Z"]),
)
def test_every_accepted_scheduled_time_makes_a_schedule(
    hour: int, minute: int, before: str, after: str
) -> None:
    """What update_config accepts, the scheduler must be able to use."""
    value = f"{before}{hour:02d}:{minute:02d}{after}"
    site = new_site()
    try:
        site.update_config({"scheduled_time": value}, AT)
    except InvalidValueError:
        return
    schedule = Schedule.from_config(site.config, site.timezone)
    assert schedule.scheduled_time == value


def test_config_survives_a_replay() -> None:
    site = Site.register(uuid4(), "Trail shoes", "UTC", AT)
    site.update_config({"timezone": "Europe/Paris", "stage_4_batch_size": 3}, AT)
    replayed: Any = None
    for domain_event in site.collect_events():
        replayed = domain_event.mutate(replayed)
    assert state(replayed) == state(site)


# --- the run lock ------------------------------------------------------------------------


def test_attach_a_run() -> None:
    site = new_site()
    run_id = uuid4()
    site.attach_run(run_id, AT)
    assert site.active_run_id == run_id
    assert site.last_run_at == AT
    assert names(site.collect_events()) == ["RunAttached"]


def test_a_second_run_cannot_attach() -> None:
    site = new_site()
    first = uuid4()
    site.attach_run(first, AT)
    site.collect_events()
    before = state(site)
    with pytest.raises(RunInProgressError) as caught:
        site.attach_run(uuid4(), AT)
    assert caught.value.details == {"run_id": str(first)}
    with pytest.raises(RunInProgressError):
        site.attach_run(first, AT)
    assert site.collect_events() == []
    assert state(site) == before


def test_only_the_active_run_releases_the_site() -> None:
    site = new_site()
    run_id = uuid4()
    site.attach_run(run_id, AT)
    site.collect_events()
    before = state(site)
    site.release_run(uuid4())
    assert site.collect_events() == []
    assert state(site) == before
    site.release_run(run_id)
    assert site.active_run_id is None
    assert names(site.collect_events()) == ["RunReleased"]
    site.release_run(run_id)
    assert site.collect_events() == []


def test_release_of_an_idle_site_does_nothing() -> None:
    site = new_site()
    before = state(site)
    site.release_run(uuid4())
    assert site.collect_events() == []
    assert state(site) == before


def test_after_a_release_the_next_run_can_attach() -> None:
    site = new_site()
    first, second = uuid4(), uuid4()
    site.attach_run(first, AT)
    site.release_run(first)
    later = datetime(2027, 1, 2, tzinfo=UTC)
    site.attach_run(second, later)
    assert site.active_run_id == second
    assert site.last_run_at == later
