"""Read models are disposable: rebuild them from the events, or check that a rebuild would
give exactly what the live ones hold.

Both fold the log into memory first, holding no lock, so the live projector keeps going
meanwhile: the log is read once, and each event is handed to every chosen view's bulk
builder (``Projection.bulk``), which keeps the view's rows in Python objects. Only then do
they claim the chosen views' positions (the live projector waits on them from here; claim
them in the projector's order), empty the views' tables, write the folded rows once, and
hand the events stored since the fold to the views' ``apply_all``, as the live projector
would, up to where they stop. That takes a fraction of the pass: the wait the live
projector sees is the write, not the read and fold. A view without a bulk builder gets
every event through ``apply_all`` under the lock.

A rebuild stops at the end of the log, moves the views' positions there and commits;
readers keep seeing the old rows until then. A check stops each view at its own position,
reads the rebuilt rows, compares them with the live rows it read first, and rolls back: the
transaction is the scratch space, and the live views are never touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from automation.adapters.sql import Database, Tx
from projections.bulk import Bulk, TableRows
from projections.runtime import (
    EventSource,
    Notification,
    Projection,
    claim_positions,
    positions_of,
)

# (name, reached, end): under PASS, the log position the fold has reached; under a view's
# name, the rows of that view written so far and in all (0 and 0 for a view rebuilt
# through apply_all()).
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
    """One chosen view: folded in memory up to ``folded`` (0 without a bulk builder)."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.bulk: Bulk | None = projection.bulk()
        self.folded = 0
        # Rows the builder handed out during the fold, written with the rest under the lock.
        self.rows: list[TableRows] = []

    def fold(self, notes: list[Notification], upto: int) -> None:
        if self.bulk is None:
            return
        add = self.bulk.add
        for note in notes:
            if note.position > upto:
                break
            add(note.event, note.position)
            self.folded = note.position
        self.rows += self.bulk.ready()

    def write(self, tx: Tx, progress: Progress | None) -> None:
        """Empty the view's tables and write what the fold made of the events."""
        for table in self.projection.tables:
            tx.execute(f"DELETE FROM {table}")
        tables = self.rows + (self.bulk.finish() if self.bulk is not None else [])
        self.rows = []
        total, written = sum(len(t.rows) for t in tables), 0
        if progress:
            progress(self.projection.name, 0, total)
        for rows in tables:
            for start in range(0, len(rows.rows), WRITE_CHUNK):
                chunk = rows.rows[start : start + WRITE_CHUNK]
                written += tx.insert_rows(rows.table, rows.columns, chunk)
                if progress:
                    progress(self.projection.name, written, total)


def _fold(
    source: EventSource, views: list[_View], upto: dict[str, int], progress: Progress | None
) -> None:
    """One pass over the log, every event to every view's builder, each view stopping at
    its own position in ``upto``."""
    end = max(upto.values(), default=0)
    after = 0
    while after < end:
        notes = source.read(after, CHUNK)
        if not notes:
            break
        for view in views:
            view.fold(notes, upto[view.projection.name])
        after = notes[-1].position
        if progress:
            progress(PASS, min(after, end), end)
    if progress and after == 0:
        progress(PASS, 0, end)


def _build(
    tx: Tx,
    source: EventSource,
    views: list[_View],
    stops: dict[str, int],
    progress: Progress | None,
) -> None:
    """Under the views' claimed positions: write each view's folded rows, then apply the
    events after its fold, up to its stop, as the live projector would."""
    for view in views:
        stop = stops[view.projection.name]
        if view.folded > stop:  # positions never move back, so nothing folds past them
            raise RuntimeError(f"{view.projection.name} was folded past its position {stop}")
        view.write(tx, progress)
    after, end = min(v.folded for v in views), max(stops.values())
    while after < end:
        notes = source.read(after, CHUNK)
        if not notes:
            break
        for view in views:
            stop = stops[view.projection.name]
            due = [n for n in notes if view.folded < n.position <= stop]
            if due:
                view.projection.apply_all(tx, due)
        after = notes[-1].position


def rebuild(
    db: Database,
    source: EventSource,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> None:
    if not projections:
        return
    views = [_View(p) for p in projections]
    names = [p.name for p in projections]
    _fold(source, views, dict.fromkeys(names, source.last_position()), progress)
    with db.write() as tx:
        claim_positions(db, tx, names)  # the live projector waits from here
        end = source.last_position()
        _build(tx, source, views, dict.fromkeys(names, end), progress)
        for name in names:
            tx.execute("UPDATE projection_tracking SET position = ? WHERE name = ?", (end, name))


def verify(
    db: Database,
    source: EventSource,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> list[Difference]:
    if not projections:
        return []
    names = [p.name for p in projections]
    views = [_View(p) for p in projections]
    # Each view folded up to where it stood before the lock; it can only have moved on.
    _fold(source, views, positions_of(db, names), progress)
    differences: list[Difference] = []
    try:
        with db.write() as tx:
            claimed = claim_positions(db, tx, names)
            live = {(p.name, t): _rows(tx, t) for p in projections for t in p.tables}
            _build(tx, source, views, claimed, progress)
            for projection in projections:
                for table in projection.tables:
                    before_rows, rebuilt = live[projection.name, table], _rows(tx, table)
                    # Compared as multisets: ORDER BY 1 leaves the order of rows that share a
                    # first column (one run's log lines) to the database.
                    only_live = _missing(before_rows, rebuilt)
                    only_rebuilt = _missing(rebuilt, before_rows)
                    if only_live or only_rebuilt:
                        differences.append(
                            Difference(projection.name, table, only_live, only_rebuilt)
                        )
            raise _RollBack
    except _RollBack:
        pass
    return differences


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
