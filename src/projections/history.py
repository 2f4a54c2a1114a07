"""history: every run of every site, newest first; also answers "whose run is this?"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from automation.domain.run import AutomationRun as Run
from projections.bulk import Bulk, TableRows
from projections.documents import dumps, loads
from projections.run_document import ENDINGS, fold, is_run_event, public, summary
from projections.runtime import Notification, Projection

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
        "CREATE INDEX IF NOT EXISTS run_history_account ON run_history (account_id, seq)",
        # Each site's answer, rendered once per change rather than on every read.
        "CREATE TABLE IF NOT EXISTS site_history (site_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        self.apply_all(tx, [Notification(position, "", event)])

    def apply_all(self, tx: Tx, notes: Sequence[Notification]) -> None:
        """Each run's events of the batch folded onto its row, read once and written once;
        each site whose listing changed is rendered once, after every run is written."""
        runs: dict[str, list[Notification]] = {}
        for note in notes:
            if is_run_event(note.event):
                runs.setdefault(str(note.event.originator_id), []).append(note)
        if not runs:
            return
        continuing = [r for r, batch in runs.items() if type(batch[0].event) is not Run.RunStarted]
        stored = _stored(tx, continuing)
        sites: list[str] = []
        for run_id, batch in runs.items():
            first = batch[0]
            started = type(first.event) is Run.RunStarted
            if started:
                doc = fold(None, first.event)
                listed_before = None
            elif run_id in stored:
                doc, listed_before = stored[run_id]
            else:
                continue  # a run this view never saw start: nothing to change
            for note in batch[1:] if started else batch:
                doc = fold(doc, note.event)
            assert doc is not None
            listed = dumps(summary(doc))
            if started:
                tx.execute(
                    "INSERT INTO run_history "
                    "(run_id, site_id, account_id, started_at, seq, state, summary) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        doc["site_id"],
                        str(first.event.account_id),
                        doc["started_at"],
                        first.position,
                        dumps(doc),
                        listed,
                    ),
                )
            else:
                tx.execute(
                    "UPDATE run_history SET state = ?, summary = ? WHERE run_id = ?",
                    (dumps(doc), listed, run_id),
                )
            # Most batch events change nothing a listing shows.
            if listed != listed_before and doc["site_id"] not in sites:
                sites.append(doc["site_id"])
        for site_id in sites:
            _render(tx, site_id)

    def bulk(self) -> Bulk:
        return _HistoryBulk()


def _stored(tx: Tx, run_ids: list[str]) -> dict[str, tuple[dict[str, Any], str]]:
    """The stored document and listing of each of these runs that has a row."""
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    rows = tx.fetchall(
        f"SELECT run_id, state, summary FROM run_history WHERE run_id IN ({marks})", run_ids
    )
    return {str(r[0]): (loads(r[1]), str(r[2])) for r in rows}


def _render(tx: Tx, site_id: str) -> None:
    rows = tx.fetchall(
        "SELECT summary FROM run_history WHERE site_id = ? ORDER BY seq DESC LIMIT ?",
        (site_id, HISTORY_LENGTH),
    )
    tx.execute(
        "INSERT INTO site_history (site_id, body) VALUES (?, ?) "
        "ON CONFLICT (site_id) DO UPDATE SET body = excluded.body",
        (site_id, _body([str(r[0]) for r in rows])),
    )


def _body(summaries: list[str]) -> str:
    """A site's answer from its newest summaries, newest first."""
    return '{"runs":[' + ",".join(summaries) + "]}"


class _Run:
    """A run_history row in memory: the document while the run may still change (only the
    latest: ``fold`` copies the top level, not every list in it), its JSON texts once it has
    ended (a fraction of the memory, for a log of many runs)."""

    __slots__ = ("account_id", "doc", "seq", "site_id", "started_at", "state", "summary")

    def __init__(self, doc: dict[str, Any], account_id: str, seq: int) -> None:
        self.site_id: str = doc["site_id"]
        self.account_id = account_id
        self.started_at: str = doc["started_at"]
        self.seq = seq
        self.doc: dict[str, Any] | None = doc
        self.state = ""
        self.summary = ""

    def document(self) -> dict[str, Any]:
        if self.doc is None:  # an event after the run ended: read it back, as apply() does
            self.doc = loads(self.state)
        return self.doc

    def freeze(self) -> None:
        if self.doc is not None:
            self.state, self.summary = dumps(self.doc), dumps(summary(self.doc))
            self.doc = None


class _HistoryBulk(Bulk):
    """Every run's document in memory; run_history and each site's answer written once.

    apply() renders a site's answer whenever a summary of one of its runs changes, from the
    summaries of that moment, so the last answer it leaves is the one rendered from the
    final summaries: that is the one written here."""

    def __init__(self) -> None:
        self.runs: dict[str, _Run] = {}

    def add(self, event: Any, position: int) -> None:
        if not is_run_event(event):
            return
        run_id = str(event.originator_id)
        kind = type(event)
        if kind is Run.RunStarted:
            doc = fold(None, event)
            assert doc is not None
            self.runs[run_id] = _Run(doc, str(event.account_id), position)
            return
        run = self.runs.get(run_id)
        if run is None:
            return
        run.doc = fold(run.document(), event)
        if kind in ENDINGS:
            run.freeze()

    def finish(self) -> list[TableRows]:
        history = TableRows("run_history", COLUMNS)
        by_site: dict[str, list[_Run]] = {}
        for run_id, run in self.runs.items():
            run.freeze()
            history.rows.append(
                (
                    run_id,
                    run.site_id,
                    run.account_id,
                    run.started_at,
                    run.seq,
                    run.state,
                    run.summary,
                )
            )
            by_site.setdefault(run.site_id, []).append(run)
        sites = TableRows("site_history", ("site_id", "body"))
        for site_id, runs in by_site.items():
            newest = sorted(runs, key=lambda r: r.seq, reverse=True)[:HISTORY_LENGTH]
            sites.rows.append((site_id, _body([r.summary for r in newest])))
        return [history, sites]


COLUMNS = ("run_id", "site_id", "account_id", "started_at", "seq", "state", "summary")


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
