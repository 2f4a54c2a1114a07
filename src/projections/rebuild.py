"""Read models are disposable: rebuild them from the events, or check that a rebuild would
give exactly what the live ones hold.

Both run inside one transaction, which claims the position of every chosen view first (the
live projector waits on them meanwhile; claim them in the projector's order). The log is
read once, and each event is handed to every chosen view in that single pass. A view with
a bulk builder (``Projection.bulk``) folds its rows in memory and they are inserted once,
at the end (lines of the logs view as they pile up); a view without one gets the events
through ``apply_all``, chunk by chunk, as the live projector gives them.

A rebuild empties the views' tables, applies every event up to the end of the log, and
moves the views' positions there; readers keep seeing the old rows until it commits. A check
does the same, each view up to its own position, reads the rebuilt rows, compares them with
the live rows it read first, and rolls back: the transaction is the scratch space, and the
live views are never touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from automation.adapters.sql import Database, Tx
from projections.bulk import Bulk, TableRows
from projections.runtime import EventSource, Notification, Projection, claim_positions

# (name, reached, end): under PASS, the log position the single pass has reached; under a
# view's name, the rows of that view written so far and in all (0 and 0 for a view rebuilt
# through apply_all(), whose rows were written during the pass).
Progress = Callable[[str, int, int], None]
PASS = "events"

CHUNK = 2000  # events read at a time
WRITE_CHUNK = 10_000  # rows inserted at a time, between progress reports


class _RollBack(Exception):
    """Ends a check's transaction without committing anything."""


@dataclass
class Difference:
    view: str
    table: str
    only_live: list[tuple[object, ...]] = field(default_factory=list)
    only_rebuilt: list[tuple[object, ...]] = field(default_factory=list)

    def describe(self, limit: int = 5) -> list[str]:
        lines = [
            f"{self.view}.{self.table}: {len(self.only_live)} row(s) only in the live "
            f"view, {len(self.only_rebuilt)} only in the rebuild"
        ]
        lines += [f"  live    {row!r}" for row in self.only_live[:limit]]
        lines += [f"  rebuilt {row!r}" for row in self.only_rebuilt[:limit]]
        return lines


class _View:
    """One chosen view during the pass: fed the events up to ``upto``."""

    def __init__(self, projection: Projection, upto: int) -> None:
        self.projection = projection
        self.upto = upto
        self.bulk: Bulk | None = projection.bulk()
        self.written = 0

    def feed(self, tx: Tx, notes: list[Notification]) -> None:
        if notes[0].position > self.upto:
            return
        if notes[-1].position > self.upto:
            notes = [n for n in notes if n.position <= self.upto]
        if self.bulk is None:
            self.projection.apply_all(tx, notes)
            return
        add = self.bulk.add
        for note in notes:
            add(note.event, note.position)
        for rows in self.bulk.ready():
            self.written += tx.insert_rows(rows.table, rows.columns, rows.rows)

    def finish(self, tx: Tx, progress: Progress | None) -> None:
        tables: list[TableRows] = self.bulk.finish() if self.bulk is not None else []
        total = self.written + sum(len(t.rows) for t in tables)
        if progress:
            progress(self.projection.name, self.written, total)
        for rows in tables:
            for start in range(0, len(rows.rows), WRITE_CHUNK):
                chunk = rows.rows[start : start + WRITE_CHUNK]
                self.written += tx.insert_rows(rows.table, rows.columns, chunk)
                if progress:
                    progress(self.projection.name, self.written, total)


def _build(tx: Tx, source: EventSource, views: list[_View], progress: Progress | None) -> None:
    """Empty the views' tables and fill them again in one pass over the log."""
    for view in views:
        for table in view.projection.tables:
            tx.execute(f"DELETE FROM {table}")
    end = max((view.upto for view in views), default=0)
    after = 0
    while after < end:
        notes = [n for n in source.read(after, CHUNK) if n.position <= end]
        if not notes:
            break
        for view in views:
            view.feed(tx, notes)
        after = notes[-1].position
        if progress:
            progress(PASS, after, end)
    if progress and after == 0:
        progress(PASS, 0, end)  # an empty log: the pass is over all the same
    for view in views:
        view.finish(tx, progress)


def _rows(tx: Tx, table: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in tx.fetchall(f"SELECT * FROM {table} ORDER BY 1")]


def _missing(
    rows: list[tuple[object, ...]], other: list[tuple[object, ...]]
) -> list[tuple[object, ...]]:
    """The rows of ``rows`` that ``other`` lacks (as multisets), in the order of ``rows``."""
    lacking = Counter(rows)
    lacking.subtract(other)
    found: list[tuple[object, ...]] = []
    for row in rows:
        if lacking[row] > 0:
            lacking[row] -= 1
            found.append(row)
    return found


def rebuild(
    db: Database,
    source: EventSource,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> None:
    if not projections:
        return
    with db.write() as tx:
        # The live projector waits meanwhile.
        claim_positions(db, tx, [p.name for p in projections])
        end = source.last_position()
        _build(tx, source, [_View(p, end) for p in projections], progress)
        for projection in projections:
            tx.execute(
                "UPDATE projection_tracking SET position = ? WHERE name = ?", (end, projection.name)
            )


def verify(
    db: Database,
    source: EventSource,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> list[Difference]:
    differences: list[Difference] = []
    try:
        with db.write() as tx:
            claimed = claim_positions(db, tx, [p.name for p in projections])
            views = [_View(p, claimed[p.name]) for p in projections]
            live = {(p.name, t): _rows(tx, t) for p in projections for t in p.tables}
            _build(tx, source, views, progress)
            for projection in projections:
                for table in projection.tables:
                    before, rebuilt = live[projection.name, table], _rows(tx, table)
                    # Compared as multisets: ORDER BY 1 leaves the order of rows that share a
                    # first column (one run's log lines) to the database.
                    only_live, only_rebuilt = _missing(before, rebuilt), _missing(rebuilt, before)
                    if only_live or only_rebuilt:
                        differences.append(
                            Difference(projection.name, table, only_live, only_rebuilt)
                        )
            raise _RollBack
    except _RollBack:
        pass
    return differences
