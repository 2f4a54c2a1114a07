"""current_run: each site's running or paused run, ready to serve as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from automation.domain.run import AutomationRun as Run
from projections.bulk import Bulk, TableRows
from projections.documents import dumps, loads
from projections.run_document import ENDINGS, fold, is_run_event, public
from projections.runtime import Notification, Projection


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
        self.apply_all(tx, [Notification(position, "", event)])

    def apply_all(self, tx: Tx, notes: Sequence[Notification]) -> None:
        """The batch's events applied in order to the rows they touch, held in memory: each
        row is read once and written once. As event by event, a run's start takes its
        site's row (from whichever run had it), its end removes the row if it still holds
        it, and its other events change the row only while it holds it."""
        events = [note.event for note in notes if is_run_event(note.event)]
        if not events:
            return
        sites: dict[str, tuple[str, str, dict[str, Any]] | None] = {}  # site -> its row
        site_of: dict[str, str] = {}  # run -> the site whose row it holds
        for site, run, account, document in _rows_of(tx, {str(e.originator_id) for e in events}):
            sites[site], site_of[run] = (run, account, document), site
        for event in events:
            run_id = str(event.originator_id)
            kind = type(event)
            if kind is Run.RunStarted:
                started = fold(None, event)
                assert started is not None
                site = started["site_id"]
                held = sites.get(site)
                if held is not None:
                    site_of.pop(held[0], None)
                sites[site], site_of[run_id] = (run_id, str(event.account_id), started), site
                continue
            holding = site_of.get(run_id)
            if holding is None:
                continue  # the run holds no row: it ended, or a newer run took its site's
            site_id = holding
            held = sites[site_id]
            assert held is not None
            if kind in ENDINGS:
                sites[site_id] = None
                del site_of[run_id]
            else:
                folded = fold(held[2], event)
                assert folded is not None
                sites[site_id] = (run_id, held[1], folded)
        for site_id, row in sites.items():
            if row is None:
                tx.execute("DELETE FROM current_runs WHERE site_id = ?", (site_id,))
            else:
                tx.execute(
                    "INSERT INTO current_runs (site_id, run_id, account_id, state, body) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE SET "
                    "run_id = excluded.run_id, account_id = excluded.account_id, "
                    "state = excluded.state, body = excluded.body",
                    _row(*row),
                )

    def bulk(self) -> Bulk:
        return _CurrentRunBulk()


COLUMNS = ("site_id", "run_id", "account_id", "state", "body")


def _rows_of(tx: Tx, run_ids: set[str]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The rows these runs hold: (site, run, account, document) each."""
    marks = ",".join("?" * len(run_ids))
    rows = tx.fetchall(
        f"SELECT site_id, run_id, account_id, state FROM current_runs WHERE run_id IN ({marks})",
        sorted(run_ids),
    )
    return [(str(r[0]), str(r[1]), str(r[2]), loads(r[3])) for r in rows]


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
        kind = type(event)
        run_id = str(event.originator_id)
        if kind in ENDINGS:
            site = self.site_of.pop(run_id, None)
            if site is not None:
                del self.sites[site]
            return
        if kind is Run.RunStarted:
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


def active_run_ids(tx: Tx) -> list[UUID]:
    """Every run that is running or paused, of every site."""
    return [UUID(str(r[0])) for r in tx.fetchall("SELECT run_id FROM current_runs", ())]
