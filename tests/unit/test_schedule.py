"""The schedule: when a site's automation runs fire, across timezones and DST changes."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.domain.schedule import FREQUENCIES, Schedule, Slot

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Apia",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
)
FIRST = datetime(2020, 1, 1, tzinfo=UTC)
LAST = datetime(2035, 12, 31, 23, 59, tzinfo=UTC)
PROPERTIES = settings(max_examples=150, deadline=None)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _transitions(name: str) -> list[datetime]:
    """The instants in 2020-2035 at which the zone's UTC offset changes."""
    zone = ZoneInfo(name)
    found: list[datetime] = []
    day = FIRST
    while day <= LAST:
        offset = day.astimezone(zone).utcoffset()
        if (day + timedelta(days=1)).astimezone(zone).utcoffset() != offset:
            low, high = 0, 86_400
            while high - low > 1:
                middle = (low + high) // 2
                moment = day + timedelta(seconds=middle)
                if moment.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(day + timedelta(seconds=high))
        day += timedelta(days=1)
    return found


TRANSITIONS = {name: _transitions(name) for name in ZONES}


@st.composite
def any_case(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    """Any schedule, and an instant in 2020-2035."""
    schedule = Schedule(
        frequency=draw(st.sampled_from(FREQUENCIES)),
        scheduled_time=f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}",
        timezone=draw(st.sampled_from(ZONES)),
        scheduled_weekday=draw(st.integers(0, 6)),
        scheduled_day_of_month=draw(st.sampled_from([28, 29, 30, 31]) | st.integers(1, 31)),
    )
    instant = draw(st.datetimes(FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None)))
    return schedule, instant.replace(tzinfo=UTC)


@st.composite
def dst_case(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    """A schedule whose wall time is near a DST change on a slot day, and an instant before it."""
    name = draw(st.sampled_from([name for name in ZONES if TRANSITIONS[name]]))
    zone = ZoneInfo(name)
    change = draw(st.sampled_from(TRANSITIONS[name]))
    clock_at_change = (change - timedelta(seconds=1)).astimezone(zone) + timedelta(seconds=1)
    wall = clock_at_change.replace(tzinfo=None) + timedelta(minutes=draw(st.integers(-60, 60)))
    schedule = Schedule(
        frequency=draw(st.sampled_from(FREQUENCIES)),
        scheduled_time=wall.strftime("%H:%M"),
        timezone=name,
        scheduled_weekday=wall.weekday(),
        scheduled_day_of_month=wall.day,
    )
    before = draw(st.timedeltas(timedelta(0), timedelta(days=2)))
    return schedule, change - timedelta(hours=2) - before


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    """A schedule and an aware instant, expressed in any of the zones."""
    schedule, instant = draw(any_case() | dst_case())
    return schedule, instant.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))


def wall_time(schedule: Schedule, slot: Slot) -> datetime:
    hour, minute = (int(part) for part in schedule.scheduled_time.split(":"))
    return datetime.combine(slot.local_date, time(hour, minute))


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the naive wall time is shown by the zone's clocks at some instant."""
    return any(
        wall.replace(tzinfo=zone, fold=fold).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        == wall
        for fold in (0, 1)
    )


def previous_slot_day(schedule: Schedule, day: date) -> date:
    if schedule.frequency == "daily":
        return day - timedelta(days=1)
    if schedule.frequency == "weekly":
        return day - timedelta(days=7)
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(schedule.scheduled_day_of_month, last))


# Examples


def test_daily_in_utc_fires_at_the_scheduled_time_each_day() -> None:
    schedule = Schedule("daily", "09:15", "UTC")

    slots = schedule.upcoming(utc(2027, 1, 1, 10, 0), 2)

    assert [slot.fire_at for slot in slots] == [utc(2027, 1, 2, 9, 15), utc(2027, 1, 3, 9, 15)]
    assert [slot.key for slot in slots] == ["2027-01-02", "2027-01-03"]
    assert all(slot.fire_at.tzinfo is UTC for slot in slots)


def test_next_after_is_strictly_later_than_its_argument() -> None:
    schedule = Schedule("daily", "09:15", "UTC")

    assert schedule.next_after(utc(2027, 1, 2, 9, 15)).fire_at == utc(2027, 1, 3, 9, 15)
    assert schedule.next_after(utc(2027, 1, 2, 9, 14, 59)).fire_at == utc(2027, 1, 2, 9, 15)


def test_weekly_picks_the_scheduled_weekday() -> None:
    schedule = Schedule("weekly", "08:00", "UTC", scheduled_weekday=2)

    slots = schedule.upcoming(utc(2027, 3, 1), 2)  # a Monday

    assert [slot.key for slot in slots] == ["2027-03-03", "2027-03-10"]
    assert all(slot.local_date.weekday() == 2 for slot in slots)


def test_monthly_on_the_31st_fires_on_the_last_day_of_shorter_months() -> None:
    schedule = Schedule("monthly", "12:00", "UTC", scheduled_day_of_month=31)

    keys = [slot.key for slot in schedule.upcoming(utc(2027, 1, 31, 12, 0), 4)]
    leap = schedule.next_after(utc(2028, 2, 1))

    assert keys == ["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]
    assert leap.key == "2028-02-29"


def test_a_time_skipped_by_spring_forward_fires_when_the_gap_ends() -> None:
    schedule = Schedule("daily", "02:30", "Europe/Berlin")

    gap_day, next_day = schedule.upcoming(utc(2027, 3, 27, 12, 0), 2)

    assert gap_day.key == "2027-03-28"
    assert gap_day.fire_at == utc(2027, 3, 28, 1, 0)
    assert gap_day.local("Europe/Berlin").isoformat() == "2027-03-28T03:00:00+02:00"
    assert next_day.fire_at == utc(2027, 3, 29, 0, 30)


def test_a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() -> None:
    schedule = Schedule("daily", "01:30", "America/New_York")

    slot = schedule.next_after(utc(2027, 11, 7, 0, 0))
    between_occurrences = schedule.next_after(utc(2027, 11, 7, 6, 0))

    assert slot.key == "2027-11-07"
    assert slot.fire_at == utc(2027, 11, 7, 5, 30)
    assert schedule.next_after(slot.fire_at).fire_at == utc(2027, 11, 8, 6, 30)
    assert between_occurrences.key == "2027-11-08"


def test_lord_howe_half_hour_dst() -> None:
    spring = Schedule("daily", "02:15", "Australia/Lord_Howe")
    autumn = Schedule("daily", "01:45", "Australia/Lord_Howe")

    gap = spring.next_after(utc(2027, 10, 2))
    repeated, after_repeat = autumn.upcoming(utc(2027, 4, 3, 12, 0), 2)

    assert gap.key == "2027-10-03"
    assert gap.local("Australia/Lord_Howe").isoformat() == "2027-10-03T02:30:00+11:00"
    assert gap.fire_at == utc(2027, 10, 2, 15, 30)
    assert repeated.key == "2027-04-04"
    assert repeated.local("Australia/Lord_Howe").isoformat() == "2027-04-04T01:45:00+11:00"
    assert after_repeat.local("Australia/Lord_Howe").isoformat() == "2027-04-05T01:45:00+10:30"


def test_changing_the_timezone_changes_the_utc_fire_time() -> None:
    berlin = Schedule("daily", "09:00", "Europe/Berlin")
    kolkata = Schedule("daily", "09:00", "Asia/Kolkata")
    after = utc(2027, 6, 1, 0, 0)

    assert berlin.next_after(after).fire_at == utc(2027, 6, 1, 7, 0)
    assert kolkata.next_after(after).fire_at == utc(2027, 6, 1, 3, 30)


def test_slots_between_lists_the_slots_missed_in_an_outage() -> None:
    schedule = Schedule("daily", "02:30", "Europe/Berlin")

    missed = schedule.slots_between(utc(2027, 3, 27, 1, 30), utc(2027, 3, 29, 0, 30))

    assert [slot.key for slot in missed] == ["2027-03-28", "2027-03-29"]
    assert schedule.slots_between(utc(2027, 3, 29), utc(2027, 3, 29)) == []
    assert schedule.slots_between(utc(2027, 3, 29), utc(2027, 3, 28)) == []


def test_from_config_reads_the_schedule_and_ignores_other_keys() -> None:
    config: dict[str, object] = {
        "is_enabled": True,
        "frequency": "monthly",
        "scheduled_time": "04:05",
        "scheduled_weekday": 3,
        "scheduled_day_of_month": 15,
        "stage_1_batch_size": 20,
    }

    schedule = Schedule.from_config(config, "Europe/London")

    assert schedule == Schedule("monthly", "04:05", "Europe/London", 3, 15)


@pytest.mark.parametrize(
    "changes",
    [
        {"frequency": "hourly"},
        {"scheduled_time": "24:00"},
        {"scheduled_time": "9:00"},
        {"scheduled_time": "09:00:00"},
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "../etc"},
        {"timezone": ""},
        {"timezone": "America"},
        {"scheduled_weekday": 7},
        {"scheduled_day_of_month": 0},
        {"scheduled_day_of_month": 32},
        {"scheduled_day_of_month": True},
    ],
)
def test_invalid_values_are_refused(changes: dict[str, object]) -> None:
    values: dict[str, object] = {
        "frequency": "daily",
        "scheduled_time": "09:00",
        "timezone": "UTC",
    } | changes

    with pytest.raises(ValueError, match=r"must be|unknown timezone"):
        Schedule(**values)  # type: ignore[arg-type]


def test_from_config_refuses_a_config_without_a_frequency() -> None:
    with pytest.raises(ValueError, match="no frequency"):
        Schedule.from_config({"scheduled_time": "09:00"}, "UTC")


def test_naive_datetimes_and_negative_counts_are_refused() -> None:
    schedule = Schedule("daily", "09:00", "UTC")

    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_after(datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        schedule.upcoming(utc(2027, 1, 1), -1)


# Properties


@PROPERTIES
@given(cases(), st.integers(1, 5))
def test_upcoming_slots_are_after_the_instant_in_order_and_never_repeat(
    case: tuple[Schedule, datetime], count: int
) -> None:
    schedule, after = case

    slots = schedule.upcoming(after, count)

    assert len(slots) == count
    assert slots[0].fire_at > after
    assert all(a.fire_at < b.fire_at for a, b in pairwise(slots))
    assert all(a.local_date < b.local_date for a, b in pairwise(slots))
    assert len({slot.key for slot in slots}) == count


@PROPERTIES
@given(cases())
def test_slots_fire_at_the_wall_time_or_at_the_end_of_its_gap(
    case: tuple[Schedule, datetime],
) -> None:
    schedule, after = case
    zone = ZoneInfo(schedule.timezone)

    for slot in schedule.upcoming(after, 3):
        wall = wall_time(schedule, slot)
        local = slot.local(zone).replace(tzinfo=None)
        assert slot.fire_at.tzinfo is UTC
        if exists(wall, zone):
            first = min(wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
            assert local == wall
            assert slot.fire_at == first
        else:
            just_before = (slot.fire_at - timedelta(seconds=1)).astimezone(zone)
            assert local > wall
            assert just_before.replace(tzinfo=None) < wall


@PROPERTIES
@given(cases())
def test_slots_fall_on_their_day_and_none_is_skipped(case: tuple[Schedule, datetime]) -> None:
    schedule, after = case

    slots = schedule.upcoming(after, 3)

    for slot in slots:
        if schedule.frequency == "weekly":
            assert slot.local_date.weekday() == schedule.scheduled_weekday
        if schedule.frequency == "monthly":
            last = calendar.monthrange(slot.local_date.year, slot.local_date.month)[1]
            assert slot.local_date.day == min(schedule.scheduled_day_of_month, last)
    for earlier, later in pairwise(slots):
        assert previous_slot_day(schedule, later.local_date) == earlier.local_date
    before_first = previous_slot_day(schedule, slots[0].local_date)
    assert schedule.slot_on(before_first).fire_at <= after


@PROPERTIES
@given(cases(), st.timedeltas(timedelta(0), timedelta(days=70)))
def test_slots_between_is_next_after_iterated_up_to_the_end(
    case: tuple[Schedule, datetime], span: timedelta
) -> None:
    schedule, start = case
    end = start + span
    expected: list[Slot] = []
    slot = schedule.next_after(start)
    while slot.fire_at <= end:
        expected.append(slot)
        slot = schedule.next_after(slot.fire_at)

    assert schedule.slots_between(start, end) == expected
    if expected:
        assert schedule.slots_between(start, expected[-1].fire_at) == expected
