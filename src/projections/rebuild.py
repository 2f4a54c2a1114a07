"""Read models are disposable: rebuild one from the events, or check that a rebuild would
give exactly what the live one holds.

Both run inside one transaction. A rebuild empties the view's tables and applies every
event up to the end of the log, then moves the view's position there; readers keep seeing
the old rows until it commits. A check does the same up to the view's own position, reads
the rebuilt rows, compares them with the live rows it read first, and rolls back: the
transaction is the scratch space, and the live view is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from automation.adapters.sql import Database, Tx
from projections.runtime import EventSource, Projection, claim_position

Progress = Callable[[str, int, int], None]  # (view, position reached, end)

CHUNK = 2000


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


def _rows(tx: Tx, table: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in tx.fetchall(f"SELECT * FROM {table} ORDER BY 1")]


def _replay(
    tx: Tx, source: EventSource, projection: Projection, upto: int, progress: Progress | None
) -> None:
    for table in projection.tables:
        tx.execute(f"DELETE FROM {table}")
    after = 0
    while after < upto:
        notes = [n for n in source.read(after, CHUNK) if n.position <= upto]
        if not notes:
            break
        for note in notes:
            projection.apply(tx, note.event, note.position)
        after = notes[-1].position
        if progress:
            progress(projection.name, after, upto)


def rebuild(
    db: Database,
    source: EventSource,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> None:
    for projection in projections:
        with db.write() as tx:
            claim_position(db, tx, projection.name)  # the live projector waits meanwhile
            end = source.last_position()
            _replay(tx, source, projection, end, progress)
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
    for projection in projections:
        try:
            with db.write() as tx:
                position = claim_position(db, tx, projection.name)
                live = {table: _rows(tx, table) for table in projection.tables}
                _replay(tx, source, projection, position, progress)
                for table in projection.tables:
                    rebuilt = _rows(tx, table)
                    if rebuilt != live[table]:
                        differences.append(
                            Difference(
                                projection.name,
                                table,
                                [r for r in live[table] if r not in rebuilt],
                                [r for r in rebuilt if r not in live[table]],
                            )
                        )
                raise _RollBack
        except _RollBack:
            pass
    return differences
