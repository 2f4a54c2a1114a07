"""current_run: each site's running or paused run, ready to serve as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from projections.bulk import Bulk, TableRows
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
            _row(run_id, account_id, doc),
        )

    def bulk(self) -> Bulk:
        return _CurrentRunBulk()


COLUMNS = ("site_id", "run_id", "account_id", "state", "body")


def _row(run_id: str, account_id: str, doc: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """A site's row for its active run, in the order of COLUMNS."""
    return (doc["site_id"], run_id, account_id, dumps(doc), dumps(public(doc)))


class _CurrentRunBulk(Bulk):
    """Each site's active run as a document in memory, serialised once at the end. Only a
    run's latest document is kept: ``fold`` copies the top level, not every list in it."""

    def __init__(self) -> None:
        self.sites: dict[str, tuple[str, str, dict[str, Any]]] = {}  # site -> run, account, doc
        self.site_of: dict[str, str] = {}  # run_id -> the site whose row is that run's

    def add(self, event: Any, position: int) -> None:
        if not is_run_event(event):
            return
        name = type(event).__name__
        run_id = str(event.originator_id)
        if name in TERMINAL_EVENTS:
            site = self.site_of.pop(run_id, None)
            if site is not None:
                del self.sites[site]
            return
        if name == "RunStarted":
            doc = fold(None, event)
            account_id = str(event.account_id)
        else:
            site = self.site_of.get(run_id)
            if site is None:
                return
            _, account_id, before = self.sites[site]
            doc = fold(before, event)
        assert doc is not None
        site_id = doc["site_id"]
        replaced = self.sites.get(site_id)
        if replaced is not None and replaced[0] != run_id:
            del self.site_of[replaced[0]]  # the upsert took that run's row over
        self.sites[site_id] = (run_id, account_id, doc)
        self.site_of[run_id] = site_id

    def finish(self) -> list[TableRows]:
        rows: list[tuple[Any, ...]] = [
            _row(run_id, account, doc) for run_id, account, doc in self.sites.values()
        ]
        return [TableRows("current_runs", COLUMNS, rows)]


def current_run_body(tx: Tx, site_id: UUID) -> str | None:
    """The active run of a site as JSON text, or None when it has none."""
    row = tx.fetchone("SELECT body FROM current_runs WHERE site_id = ?", (str(site_id),))
    return str(row[0]) if row else None
