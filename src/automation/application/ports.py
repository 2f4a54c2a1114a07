"""The ports the application needs from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from automation.domain.estimate import PendingWork


class Clock(Protocol):
    """Where the application reads the time, so tests can move it."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class KeywordInput:
    keyword: str
    volume: int | None = None


@dataclass(frozen=True)
class ImportResult:
    created: int
    duplicates: int


class ContentStore(Protocol):
    """The pipeline's content: keywords and everything made from them."""

    def add_keywords(
        self, site_id: UUID, keywords: Sequence[KeywordInput], at: datetime
    ) -> ImportResult:
        """Insert new keywords; case-insensitive duplicates of stored ones are counted."""
        ...

    def pending_work(self, site_id: UUID) -> PendingWork: ...

    def list_items(
        self, kind: str, site_id: UUID, status: str | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, object]]]:
        """One page of a content listing and the count of all that match."""
        ...
