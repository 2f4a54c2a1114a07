"""history: every run of every site, newest first; also answers "whose run is this?"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from projections.documents import dumps, loads
from projections.run_document import fold, is_run_event, public, summary
from projections.runtime import Projection

HISTORY_LENGTH = 20


class HistoryProjection(Projection):
    name: ClassVar[str] = "history"
    tables: ClassVar[Sequence[str]] = ("run_history", "site_history")
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS run_history ("
        "run_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, account_id TEXT NOT NULL, "
        "started_at TEXT NOT NULL, seq BIGINT NOT NULL, state TEXT NOT NULL, "
        "summary TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS run_history_site ON run_history (site_id, seq)",
        # Each site's answer, rendered once per change rather than on every read.
        "CREATE TABLE IF NOT EXISTS site_history (site_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        if not is_run_event(event):
            return
        run_id = str(event.originator_id)
        if type(event).__name__ == "RunStarted":
            doc = fold(None, event)
            assert doc is not None
            tx.execute(
                "INSERT INTO run_history "
                "(run_id, site_id, account_id, started_at, seq, state, summary) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    doc["site_id"],
                    str(event.account_id),
                    doc["started_at"],
                    position,
                    dumps(doc),
                    dumps(summary(doc)),
                ),
            )
            _render(tx, doc["site_id"])
            return
        row = tx.fetchone("SELECT state, summary FROM run_history WHERE run_id = ?", (run_id,))
        if row is None:
            return
        doc = fold(loads(row[0]), event)
        assert doc is not None
        listed = dumps(summary(doc))
        tx.execute(
            "UPDATE run_history SET state = ?, summary = ? WHERE run_id = ?",
            (dumps(doc), listed, run_id),
        )
        if listed != row[1]:  # most batch events change nothing a listing shows
            _render(tx, doc["site_id"])


def _render(tx: Tx, site_id: str) -> None:
    rows = tx.fetchall(
        "SELECT summary FROM run_history WHERE site_id = ? ORDER BY seq DESC LIMIT ?",
        (site_id, HISTORY_LENGTH),
    )
    body = '{"runs":[' + ",".join(str(r[0]) for r in rows) + "]}"
    tx.execute(
        "INSERT INTO site_history (site_id, body) VALUES (?, ?) "
        "ON CONFLICT (site_id) DO UPDATE SET body = excluded.body",
        (site_id, body),
    )


def history_body(tx: Tx, site_id: UUID) -> str:
    """``{"runs": [...]}`` as JSON text: the site's last 20 runs, newest first."""
    row = tx.fetchone("SELECT body FROM site_history WHERE site_id = ?", (str(site_id),))
    return str(row[0]) if row else '{"runs":[]}'


def run_owner(tx: Tx, run_id: UUID) -> tuple[str, str] | None:
    """(account_id, site_id) of a run, or None when no such run is known."""
    row = tx.fetchone(
        "SELECT account_id, site_id FROM run_history WHERE run_id = ?", (str(run_id),)
    )
    return (str(row[0]), str(row[1])) if row else None


def run_document(tx: Tx, run_id: UUID) -> dict[str, Any] | None:
    row = tx.fetchone("SELECT state FROM run_history WHERE run_id = ?", (str(run_id),))
    return public(loads(row[0])) if row else None
