"""Runs projections: follows the event log and writes each view with its position.

A projection's rows and its tracking position are written in one transaction, and a step
first locks the positions it will move, so a restart neither loses nor re-applies an event,
and two projector processes never both apply one batch. A step costs a few statements
whatever the number of views: one to claim every position, one to read the log, the views'
own writes, one to move the positions.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from automation.adapters.sql import Database, Tx
from projections.bulk import Bulk

log = logging.getLogger(__name__)

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    "name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)


class Projection(ABC):
    """A read model: its tables, and how one event changes them."""

    name: ClassVar[str]
    ddl: ClassVar[Sequence[str]]
    tables: ClassVar[Sequence[str]]

    @abstractmethod
    def apply(self, tx: Tx, event: Any, position: int) -> None:
        """Change the view's rows for one event (inside the batch's transaction)."""

    def apply_all(self, tx: Tx, notes: Sequence[Notification]) -> None:
        """Change the view's rows for a batch of events, in order: what ``apply`` of each in
        turn would leave. A view whose rows several events of a batch change can read and
        write each row once instead."""
        for note in notes:
            self.apply(tx, note.event, note.position)

    def bulk(self) -> Bulk | None:
        """A builder that rebuilds the view in memory (see ``projections.bulk``), or None to
        rebuild it by calling ``apply`` for every event."""
        return None


@dataclass(frozen=True)
class Notification:
    position: int
    topic: str
    event: Any


class EventSource(Protocol):
    def read(self, after: int, limit: int) -> list[Notification]:
        """Up to ``limit`` stored events after position ``after``, in order."""
        ...

    def last_position(self) -> int: ...


class StalePositionError(Exception):
    """Another projector moved the position first; this batch was rolled back."""


def ensure_tables(db: Database, projections: Sequence[Projection]) -> None:
    with db.write() as tx:
        tx.execute(TRACKING_DDL)
        for projection in projections:
            for statement in projection.ddl:
                tx.execute(statement)
            tx.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (?, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (projection.name,),
            )


def claim_positions(db: Database, tx: Tx, names: Sequence[str]) -> dict[str, int]:
    """Views' positions, locked for this transaction in one statement: a second projector
    (or a rebuild) waits here, then sees how far the first got, instead of applying the
    same events again. Rows are locked in name order, whoever asks, so claimers never
    deadlock."""
    lock = " FOR UPDATE" if db.dialect == "postgres" else ""  # SQLite: the write tx excludes
    return _positions(tx, names, " ORDER BY name" + lock)


def positions_of(db: Database, names: Sequence[str]) -> dict[str, int]:
    """The views' committed positions, without locking them (0 for a view never moved)."""
    with db.read() as tx:
        return _positions(tx, names)


def _positions(tx: Tx, names: Sequence[str], suffix: str = "") -> dict[str, int]:
    marks = ",".join("?" * len(names))
    rows = tx.fetchall(
        f"SELECT name, position FROM projection_tracking WHERE name IN ({marks}){suffix}",
        list(names),
    )
    found = {str(r[0]): int(r[1]) for r in rows}
    return {name: found.get(name, 0) for name in names}


def position_of(tx: Tx, name: str) -> int:
    row = tx.fetchone("SELECT position FROM projection_tracking WHERE name = ?", (name,))
    return int(row[0]) if row else 0


def advance_position(tx: Tx, name: str, old: int, new: int) -> None:
    """Move a tracked position from ``old`` to ``new``; StalePositionError if it moved."""
    if old == 0 and position_of(tx, name) == 0:
        tx.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, 0),
        )
    changed = tx.execute(
        "UPDATE projection_tracking SET position = ? WHERE name = ? AND position = ?",
        (new, name, old),
    )
    if changed != 1:
        raise StalePositionError(name)


class Projector:
    """Applies new events to a set of projections, batch by batch."""

    def __init__(
        self,
        db: Database,
        source: EventSource,
        projections: Sequence[Projection],
        batch_size: int = 500,
        progress_channel: str | None = None,
    ) -> None:
        self.db = db
        self.source = source
        self.projections = list(projections)
        self.batch_size = batch_size
        # PostgreSQL: each batch NOTIFYs the position it commits on this channel, so
        # processes without a projector of their own (or whose projector found the batch
        # already applied) learn it at once.
        self.progress_channel = progress_channel
        self._reported = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self.restarts = 0
        self.on_progress: list[Callable[[int], None]] = []

    def setup(self) -> None:
        ensure_tables(self.db, self.projections)

    def positions(self) -> dict[str, int]:
        return positions_of(self.db, [p.name for p in self.projections])

    def position(self) -> int:
        """The position every projection has reached."""
        return min(self.positions().values(), default=0)

    def catch_up(self) -> int:
        """Apply everything stored so far; returns how many events were applied."""
        applied = 0
        while True:
            count = self._step()
            applied += count
            if count < self.batch_size:  # a short batch reached the end of the log
                return applied

    def _step(self) -> int:
        # One transaction (one commit) for the batch across every view that is behind; each
        # view keeps a position of its own, so each can still be rebuilt alone. Claiming the
        # positions first means a second projector waits here, then finds the work done.
        names = [p.name for p in self.projections]
        with self.db.write() as tx:
            positions = claim_positions(self.db, tx, names)
            batch = self.source.read(min(positions.values(), default=0), self.batch_size)
            if batch:
                self._apply(tx, positions, batch)
        # Report the committed position whoever applied it: another process's projector
        # may have applied the batch a command here waits for.
        self._report(batch[-1].position if batch else min(positions.values(), default=0))
        return len(batch)

    def _apply(self, tx: Tx, positions: dict[str, int], batch: list[Notification]) -> None:
        reached = batch[-1].position
        moved: list[str] = []
        for projection in self.projections:
            old = positions[projection.name]
            if old >= reached:
                continue
            projection.apply_all(tx, [note for note in batch if note.position > old])
            moved.append(projection.name)
        rows = ", ".join("(?, ?)" for _ in moved)
        tx.execute(
            f"INSERT INTO projection_tracking (name, position) VALUES {rows} "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            [value for name in moved for value in (name, reached)],
        )
        if self.progress_channel is not None:  # delivered when (and only if) this commits
            tx.execute("SELECT pg_notify(?, ?)", (self.progress_channel, str(reached)))

    def _report(self, position: int) -> None:
        if position <= self._reported:
            return
        self._reported = position
        with self._progress:
            self._progress.notify_all()
        for callback in self.on_progress:
            callback(position)

    def wake(self) -> None:
        self._wake.set()

    def start(self, poll_interval: float = 1.0) -> None:
        """Follow the log in a thread: woken by ``wake()``, polling as a fallback (so a
        lost wake-up only delays it), and restarted by a supervisor if it ever dies."""

        def follow() -> None:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self.catch_up()
                except Exception:
                    log.exception("projector step failed; retrying")
                    self._stop.wait(0.5)
                    continue
                self._wake.wait(poll_interval)

        def supervise() -> None:
            while not self._stop.is_set():
                self._thread = threading.Thread(target=follow, name="projector", daemon=True)
                self._thread.start()
                self._thread.join()
                if not self._stop.is_set():
                    self.restarts += 1
                    log.error("the projector stopped; restarting it")
                    self._stop.wait(1.0)

        self._supervisor = threading.Thread(
            target=supervise, name="projector-supervisor", daemon=True
        )
        self._supervisor.start()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Block until every projection has reached ``position``; False on timeout."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while self.position() < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wake()
            with self._progress:
                self._progress.wait(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        return True
