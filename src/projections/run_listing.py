"""Pages of runs from the history view: one site's or a whole account's, newest first,
filtered by status, trigger and start time, with a cursor to the next page.

The cursor is the log position of the last run listed: pages stay gapless and free of
repeats while new runs start, since a new run only ever comes before the first page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from automation.adapters.sql import Tx
from projections.documents import loads

# Rows read per round trip while filters drop some: enough for a page in one go mostly.
_CHUNK = 200


@dataclass(frozen=True)
class RunFilter:
    status: str | None = None
    trigger: str | None = None
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before

    def keeps(self, summary: dict[str, object]) -> bool:
        if self.status is not None and summary.get("status") != self.status:
            return False
        if self.trigger is not None and summary.get("trigger_type") != self.trigger:
            return False
        if self.since is None and self.until is None:
            return True
        started = datetime.fromisoformat(str(summary["started_at"]).replace("Z", "+00:00"))
        if self.since is not None and started < self.since:
            return False
        return self.until is None or started < self.until


def runs_page(
    tx: Tx,
    account_id: str,
    site_id: str | None,
    keep: RunFilter,
    limit: int,
    before: int | None,
) -> tuple[list[str], int | None]:
    """Up to ``limit`` runs started before log position ``before`` (the newest, without),
    as their listed JSON, and the cursor position of the next page (None: no more)."""
    where = "account_id = ?" + (" AND site_id = ?" if site_id else "")
    params: list[object] = [account_id, site_id] if site_id else [account_id]
    found: list[tuple[int, str]] = []
    position = before if before is not None else 2**62
    while len(found) <= limit:
        rows = tx.fetchall(
            f"SELECT seq, summary FROM run_history WHERE {where} AND seq < ? "
            "ORDER BY seq DESC LIMIT ?",
            (*params, position, _CHUNK),
        )
        found += [(int(r[0]), str(r[1])) for r in rows if keep.keeps(loads(r[1]))]
        if len(rows) < _CHUNK:
            break
        position = int(rows[-1][0])
    page = found[:limit]
    more = len(found) > limit
    return [summary for _, summary in page], (page[-1][0] if more and page else None)
