"""A clock that tests move by hand: the application's Clock port, faked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class MovableClock:
    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime(2027, 3, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def move(self, delta: timedelta) -> None:
        self._now += delta
