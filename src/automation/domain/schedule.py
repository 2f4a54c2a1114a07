"""When a site's automation runs fire: its schedule and the slots the schedule yields.

A schedule names a wall time in the site's IANA timezone; slots fire at UTC instants.
Daylight saving time:

- a wall time skipped by a spring-forward gap fires at the first instant after the gap
  (Europe/Berlin 2027-03-28 02:30 fires at 03:00 local, 01:00 UTC);
- a wall time that occurs twice on a fall-back day fires once, at its first occurrence.

A slot's identity is its nominal local date: at most one slot per date per site. Should two
dates ever fire at the same instant (a whole skipped day), that instant is the earlier date's.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FREQUENCIES = ("daily", "weekly", "monthly")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Slot:
    """One firing of a schedule: the local date it stands for and the UTC instant it fires."""

    local_date: date
    fire_at: datetime

    @property
    def key(self) -> str:
        """Stable identity of the slot within its site: the ISO date, e.g. ``2027-03-28``."""
        return self.local_date.isoformat()

    def local(self, tz: str | tzinfo) -> datetime:
        """The fire time as an aware datetime in ``tz`` (the site's timezone, or its name)."""
        return self.fire_at.astimezone(zone_named(tz) if isinstance(tz, str) else tz)


@dataclass(frozen=True)
class Schedule:
    """A daily, weekly or monthly wall time in an IANA timezone."""

    frequency: str
    scheduled_time: str
    timezone: str
    scheduled_weekday: int = 0
    scheduled_day_of_month: int = 1

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(
                f"frequency must be one of {', '.join(FREQUENCIES)}, got {self.frequency!r}"
            )
        if not isinstance(self.scheduled_time, str) or not _HHMM.fullmatch(self.scheduled_time):
            raise ValueError(
                f"scheduled_time must be HH:MM (00:00-23:59), got {self.scheduled_time!r}"
            )
        zone_named(self.timezone)
        _whole_number("scheduled_weekday", self.scheduled_weekday, 0, 6)
        _whole_number("scheduled_day_of_month", self.scheduled_day_of_month, 1, 31)

    @classmethod
    def from_config(cls, config: Mapping[str, object], timezone: str) -> Schedule:
        """The schedule in a site's config dict; keys that are not about scheduling are ignored.

        ``frequency`` and ``scheduled_time`` are required; weekday and day of month default
        to Monday and the 1st.
        """
        for key in ("frequency", "scheduled_time"):
            if key not in config:
                raise ValueError(f"config has no {key}")
        frequency = config["frequency"]
        scheduled_time = config["scheduled_time"]
        weekday = config.get("scheduled_weekday", 0)
        day_of_month = config.get("scheduled_day_of_month", 1)
        if not isinstance(frequency, str):
            raise ValueError(f"frequency must be a string, got {frequency!r}")
        if not isinstance(scheduled_time, str):
            raise ValueError(f"scheduled_time must be a string, got {scheduled_time!r}")
        return cls(
            frequency,
            scheduled_time,
            timezone,
            _whole_number("scheduled_weekday", weekday, 0, 6),
            _whole_number("scheduled_day_of_month", day_of_month, 1, 31),
        )

    @property
    def zone(self) -> ZoneInfo:
        """The site's timezone."""
        return zone_named(self.timezone)

    def is_slot_day(self, local_day: date) -> bool:
        """Whether the schedule has a slot on this local calendar day."""
        if self.frequency == "weekly":
            return local_day.weekday() == self.scheduled_weekday
        if self.frequency == "monthly":
            last = calendar.monthrange(local_day.year, local_day.month)[1]
            return local_day.day == min(self.scheduled_day_of_month, last)
        return True

    def slot_on(self, local_day: date) -> Slot:
        """The slot of a local day the schedule fires on (see ``is_slot_day``)."""
        if not self.is_slot_day(local_day):
            raise ValueError(f"{self.frequency} schedule has no slot on {local_day.isoformat()}")
        hour, minute = (int(part) for part in self.scheduled_time.split(":"))
        wall = datetime.combine(local_day, time(hour, minute))
        return Slot(local_date=local_day, fire_at=_fire_instant(wall, self.zone))

    def next_after(self, instant: datetime) -> Slot:
        """The first slot that fires strictly after ``instant`` (aware, any timezone)."""
        _require_aware("instant", instant)
        # Start a day early: a skipped day (Pacific/Apia 2011-12-30) fires on the next local day.
        day = instant.astimezone(self.zone).date() - _ONE_DAY
        while True:
            if self.is_slot_day(day):
                slot = self.slot_on(day)
                if slot.fire_at > instant:
                    return slot
            day += _ONE_DAY

    def upcoming(self, after: datetime, count: int) -> list[Slot]:
        """The next ``count`` slots after ``after``, in order of strictly increasing fire time."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        slots: list[Slot] = []
        instant = after
        for _ in range(count):
            slots.append(self.next_after(instant))
            instant = slots[-1].fire_at
        return slots

    def slots_between(self, start: datetime, end: datetime) -> list[Slot]:
        """The slots with ``start < fire_at <= end``, in order: the ones missed in an outage.

        The list has one entry per slot in the range, so callers should bound the range
        (for example to the last few days) rather than pass an unbounded ``start``.
        """
        _require_aware("end", end)
        slots: list[Slot] = []
        slot = self.next_after(start)
        while slot.fire_at <= end:
            slots.append(slot)
            slot = self.next_after(slot.fire_at)
        return slots


def zone_named(name: str) -> ZoneInfo:
    """The IANA timezone called ``name``; ValueError when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise ValueError(
            f"unknown timezone {name!r}, expected an IANA name such as Europe/Berlin"
        ) from None


def _fire_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive local ``wall`` time under the DST rules in the module doc."""
    # fold=0 is the first occurrence of a wall time that happens twice.
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # A wall time that does not round-trip lies in a gap. There fold=1 maps it to an instant
    # before the transition and fold=0 to one after it, so the transition (the first instant
    # whose wall clock is past ``wall``) lies in between; transitions fall on whole seconds.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    before, after = 0, int((first - low).total_seconds())
    while after - before > 1:
        middle = (before + after) // 2
        moment = low + timedelta(seconds=middle)
        if moment.astimezone(zone).replace(tzinfo=None) > wall:
            after = middle
        else:
            before = middle
    return low + timedelta(seconds=after)


def _whole_number(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
