"""Building a read model in memory, for rebuilds.

The live path (``Projection.apply``) changes a view's rows one event at a time, reading back
what it wrote before. Replaying a whole log that way rewrites the same few rows thousands of
times. A rebuild instead hands every event to the view's ``Bulk``, which keeps the rows in
Python objects, and writes each row once at the end. A bulk builder must leave exactly the
rows that ``apply`` would have left after the same events: ``projections verify`` compares
the two, row by row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TableRows:
    """Rows for one table, each a tuple in the order of ``columns``."""

    table: str
    columns: Sequence[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


class Bulk(ABC):
    """One view being rebuilt: fed every event once, in log order, then asked for its rows.

    Its tables are empty when it starts, and it writes nothing itself: the caller inserts
    the rows it hands out.
    """

    @abstractmethod
    def add(self, event: Any, position: int) -> None:
        """Fold one event into the rows held in memory."""

    def ready(self) -> list[TableRows]:
        """Rows that no later event can change, handed out (and forgotten) early so that
        memory stays bounded on a long log; by default everything waits for ``finish``."""
        return []

    @abstractmethod
    def finish(self) -> list[TableRows]:
        """Every row not handed out yet, after the last event."""
