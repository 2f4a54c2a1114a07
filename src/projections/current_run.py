"""current_run: each site's running or paused run, ready to serve as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from projections.documents import dumps, loads
from projections.run_document import TERMINAL_EVENTS, fold, is_run_event, public
from projections.runtime import Projection


class CurrentRunProjection(Projection):
    name: ClassVar[str] = "current_run"
    tables: ClassVar[Sequence[str]] = ("current_runs",)
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS current_runs ("
        "site_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, account_id TEXT NOT NULL, "
        "state TEXT NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS current_runs_run ON current_runs (run_id)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        if not is_run_event(event):
            return
        name = type(event).__name__
        run_id = str(event.originator_id)
        if name in TERMINAL_EVENTS:
            tx.execute("DELETE FROM current_runs WHERE run_id = ?", (run_id,))
            return
        if name == "RunStarted":
            doc = fold(None, event)
            account_id = str(event.account_id)
        else:
            row = tx.fetchone(
                "SELECT state, account_id FROM current_runs WHERE run_id = ?", (run_id,)
            )
            if row is None:
                return
            doc = fold(loads(row[0]), event)
            account_id = row[1]
        assert doc is not None
        tx.execute(
            "INSERT INTO current_runs (site_id, run_id, account_id, state, body) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE SET "
            "run_id = excluded.run_id, account_id = excluded.account_id, "
            "state = excluded.state, body = excluded.body",
            (doc["site_id"], run_id, account_id, dumps(doc), dumps(public(doc))),
        )


def current_run_body(tx: Tx, site_id: UUID) -> str | None:
    """The active run of a site as JSON text, or None when it has none."""
    row = tx.fetchone("SELECT body FROM current_runs WHERE site_id = ?", (str(site_id),))
    return str(row[0]) if row else None
