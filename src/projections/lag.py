"""How far each read model is behind the event log: in events, and in seconds (how long
the oldest event it has not applied yet has been waiting)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from projections.runtime import EventSource


@dataclass(frozen=True)
class Lag:
    events: int
    seconds: float


def lag_of(source: EventSource, positions: dict[str, int], now: datetime) -> dict[str, Lag]:
    last = source.last_position()
    lags: dict[str, Lag] = {}
    waiting_since: dict[int, float] = {}
    for name, position in positions.items():
        behind = max(0, last - position)
        seconds = 0.0
        if behind:
            if position not in waiting_since:
                oldest = source.read(position, 1)
                waiting_since[position] = (
                    max(0.0, (now - oldest[0].event.timestamp).total_seconds()) if oldest else 0.0
                )
            seconds = waiting_since[position]
        lags[name] = Lag(behind, round(seconds, 3))
    return lags
