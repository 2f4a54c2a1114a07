"""A site's automation configuration: a validated, immutable value."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from automation.domain.errors import InvalidValueError
from automation.domain.values import Frequency

BATCH_SIZE_RANGE = (1, 1000)
DELAY_RANGE = (0, 86400)
HOURS_RANGE = (1, 8760)  # up to a year
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@dataclass(frozen=True)
class SiteConfig:
    is_enabled: bool = False
    frequency: str = Frequency.DAILY.value
    scheduled_time: str = "02:00"
    scheduled_weekday: int = 0
    scheduled_day_of_month: int = 1
    stage_1_batch_size: int = 20
    stage_2_batch_size: int = 1
    stage_3_batch_size: int = 20
    stage_4_batch_size: int = 1
    stage_5_batch_size: int = 1
    stage_6_batch_size: int = 1
    within_stage_delay: int = 3
    between_stage_delay: int = 5
    # A run paused longer than this, or running longer than this (None: no limit), is
    # cancelled by the service, which frees its site and its credits.
    max_paused_hours: int = 168
    max_run_hours: int | None = None

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteConfig:
        """Rebuild from stored event data; unknown keys (from newer writers) are ignored."""
        known = cls.field_names()
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def batch_size(self, stage: int) -> int:
        value: int = getattr(self, f"stage_{stage}_batch_size")
        return value

    def with_changes(self, changes: dict[str, Any]) -> SiteConfig:
        """A copy with the changes applied; every bad field is named in one error."""
        problems: dict[str, str] = {}
        for name in sorted(set(changes) - self.field_names()):
            problems[name] = "unknown field"
        for name, value in changes.items():
            if name in self.field_names():
                problem = _check(name, value)
                if problem:
                    problems[name] = problem
        if problems:
            raise InvalidValueError(problems)
        return replace(self, **changes)


def _check(name: str, value: Any) -> str | None:
    if name == "is_enabled":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "frequency":
        allowed = [f.value for f in Frequency]
        return None if value in allowed else f"must be one of {', '.join(allowed)}"
    if name == "scheduled_time":
        ok = isinstance(value, str) and _HHMM.fullmatch(value)
        return None if ok else "must be HH:MM (00:00 to 23:59)"
    if name == "scheduled_weekday":
        return _int_in(value, 0, 6)
    if name == "scheduled_day_of_month":
        return _int_in(value, 1, 31)
    if name.endswith("_batch_size"):
        return _int_in(value, *BATCH_SIZE_RANGE)
    if name.endswith("_delay"):
        return _int_in(value, *DELAY_RANGE)
    if name == "max_paused_hours" or (name == "max_run_hours" and value is not None):
        return _int_in(value, *HOURS_RANGE)
    return None


def _int_in(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"must be a whole number from {low} to {high}"
    return None


def check_timezone(name: object) -> str | None:
    """None when ``name`` is an IANA timezone this machine knows, else the problem."""
    if not isinstance(name, str) or name not in _zones():
        return "must be an IANA timezone such as Europe/Berlin"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be an IANA timezone such as Europe/Berlin"
    return None


_ZONES: frozenset[str] = frozenset()


def _zones() -> frozenset[str]:
    global _ZONES
    if not _ZONES:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES
