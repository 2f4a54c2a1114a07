"""A PostgreSQL event recorder that lets concurrent saves share one statement.

The library's recorder takes an exclusive lock on the events table for every save, so that
notification ids are committed in the order they are issued (readers of the log never skip
an id that commits later). That makes saves strictly serial, and each costs several round
trips: begin, lock, notify, insert, commit. Here, saves that arrive while another is being
written queue up, and the next writer takes the whole queue into one statement, run on its
own (autocommit) so that it is one transaction and one round trip: it takes the log's
advisory lock, queues the NOTIFY and inserts every save's events. Commit order still equals
id order: every writer takes the same lock before it draws an id, until its commit.

Only if that statement fails on a conflict (optimistic concurrency: a save whose version is
taken) are the saves written again, one by one in one transaction, each in a savepoint of
its own, so the conflicting save fails alone while the others commit.

The hot statements are rendered to text once (the library composes them on every call),
and the insert passes four plain arrays, which psycopg dumps far faster than an array of a
composite type. Same rows, same order, same returned ids.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Composable, Identifier, Literal

from automation.adapters.pg_pool import install_check
from automation.adapters.sql import advisory_lock_key

MAX_BATCH = 128


def _stored(row: Any) -> dict[str, Any]:
    """A stored event's fields from a row of the events table."""
    return {
        "originator_id": row["originator_id"],
        "originator_version": row["originator_version"],
        "topic": row["topic"],
        "state": bytes(row["state"]),
    }


def _failed(error: Exception) -> OperationalError:
    failure = OperationalError(str(error))  # from its cause: see adapters/transient.py
    failure.__cause__ = error
    return failure


class _Save:
    __slots__ = ("error", "events", "ids", "is_leader", "wake")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.ids: list[int] | None = None
        self.error: Exception | None = None
        self.is_leader = False
        self.wake = threading.Event()


class GroupCommitRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        install_check(self.datastore.pool)  # no connection the server has ended is handed out
        self._mutex = threading.Lock()
        self._queue: list[_Save] = []
        self._writing = False
        self._rendered: dict[object, str] = {}
        table = (Identifier(self.datastore.schema), Identifier(self.events_table_name))
        id_type = SQL(self.datastore.originator_id_type)
        # The lock every writer of this events table takes before it draws ids.
        self.lock_key = advisory_lock_key(self.datastore.schema, self.events_table_name)
        self._insert = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::{}[], %s::bigint[], %s::text[], %s::bytea[]) "
            "RETURNING notification_id"
        ).format(*table, id_type)
        # The whole write in one statement. The lock's row joins every inserted row, so it
        # is taken before the first id is drawn; it is held until the statement commits.
        self._lock_notify_insert = SQL(
            "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({key})), "
            "wake AS MATERIALIZED (SELECT pg_notify({channel}, '')) "
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT saved.* FROM lock, wake, "
            "unnest(%s::{}[], %s::bigint[], %s::text[], %s::bytea[]) AS saved "
            "RETURNING notification_id"
        ).format(*table, id_type, key=Literal(self.lock_key), channel=Literal(self.channel_name))
        self._select = SQL("SELECT * FROM {}.{} WHERE originator_id = %s").format(*table)

    def _text(self, key: object, statement: Callable[[], Composable], curs: Any) -> str:
        text = self._rendered.get(key)
        if text is None:
            text = self._rendered[key] = statement().as_string(curs)
        return text

    def _select_statement(
        self, has_gt: bool, has_lte: bool, desc: bool, has_limit: bool
    ) -> Composable:
        statement = self._select
        if has_gt:
            statement += SQL(" AND originator_version > %s")
        if has_lte:
            statement += SQL(" AND originator_version <= %s")
        statement += SQL(" ORDER BY originator_version" + (" DESC" if desc else ""))
        if has_limit:
            statement += SQL(" LIMIT %s")
        return statement

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        save = _Save(stored_events)
        with self._mutex:
            self._queue.append(save)
            if not self._writing:
                self._writing = save.is_leader = True
        while save.ids is None and save.error is None:
            if save.is_leader:
                self._write_queued()
            else:
                save.wake.wait()
                save.wake.clear()
        if save.error is not None:
            raise save.error
        return save.ids

    def _write_queued(self) -> None:
        """Write what is queued (this thread's save among it), then pass the turn on."""
        with self._mutex:
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
        try:
            self._write(batch)
        finally:
            with self._mutex:
                if self._queue:
                    successor = self._queue[0]
                    successor.is_leader = True
                    successor.wake.set()
                else:
                    self._writing = False
            for save in batch:
                save.is_leader = False
                save.wake.set()

    def _write(self, batch: list[_Save]) -> None:
        try:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                self._insert_saves(curs, batch, "lock_notify_insert", self._lock_notify_insert)
            return
        except (psycopg.IntegrityError, IntegrityError) as error:  # the library converts
            if len(batch) == 1:  # the statement was this save alone
                self._fail(batch, IntegrityError(str(error)))
                return
        except Exception as error:  # noqa: BLE001 - the statement did not commit: no save in it did
            self._fail(batch, _failed(error))
            return
        for save in batch:
            save.ids = None
        self._write_one_by_one(batch)

    def _write_one_by_one(self, batch: list[_Save]) -> None:
        """A batch with a conflict: each save in a savepoint of its own, in one transaction,
        so the conflicting save fails alone and the others commit."""
        try:
            with (
                self.datastore.get_connection() as conn,
                conn.transaction(),
                conn.cursor() as curs,
            ):
                curs.execute(self._preamble(curs))
                for save in batch:
                    self._write_one(conn, curs, save)
        except Exception as error:  # noqa: BLE001 - the transaction did not commit: no save in it did
            self._fail(batch, _failed(error))
            return
        for save in batch:
            if save.error is not None:
                save.ids = None

    @staticmethod
    def _fail(batch: list[_Save], failure: Exception) -> None:
        for save in batch:
            if save.error is None:
                save.ids, save.error = None, failure

    def _preamble(self, curs: Any) -> str:
        """Take the log's lock (the same one as the one-statement write) and queue the
        NOTIFY, in one round trip."""
        return self._text(
            "preamble",
            lambda: SQL("SELECT pg_advisory_xact_lock({}); NOTIFY {}").format(
                Literal(self.lock_key), Identifier(self.channel_name)
            ),
            curs,
        )

    def _insert_saves(self, curs: Any, batch: list[_Save], key: str, statement: Composable) -> None:
        events = [e for save in batch for e in save.events]
        self._insert_rows(curs, events, key, statement)
        ids = [row["notification_id"] for row in curs.fetchall()]
        start = 0
        for save in batch:
            save.ids = ids[start : start + len(save.events)]
            start += len(save.events)

    def _write_one(self, conn: psycopg.Connection[Any], curs: Any, save: _Save) -> None:
        try:
            with conn.transaction():  # a savepoint: a conflict undoes this save alone
                self._insert_rows(curs, save.events, "insert", self._insert)
                save.ids = [row["notification_id"] for row in curs.fetchall()]
        except psycopg.IntegrityError as error:
            save.error = IntegrityError(str(error))

    def _insert_rows(
        self, curs: Any, stored_events: Sequence[StoredEvent], key: str, statement: Composable
    ) -> None:
        curs.execute(
            self._text(key, lambda: statement, curs),
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The followers' read of the log (the projector, the orchestrator, the relay), with
        its statement rendered once; other kinds of selection go to the library."""
        if start is None or stop is not None or topics:
            notes: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return notes
        compare = ">=" if inclusive_of_start else ">"
        rows = self._rows(
            ("notifications", inclusive_of_start),
            lambda: SQL(
                "SELECT * FROM {}.{} WHERE notification_id " + compare + " %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name)),
            (start, limit),
        )
        if rows is None:  # the connection dropped: the library's way, which retries
            notes = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return notes
        return [Notification(id=row["notification_id"], **_stored(row)) for row in rows]

    def _rows(
        self, key: object, statement: Callable[[], Composable], params: Sequence[Any]
    ) -> list[Any] | None:
        """The rows of a statement rendered once; None if the connection dropped."""
        try:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self._text(key, statement, curs), params, prepare=True)
                return list(curs.fetchall())
        except (psycopg.InterfaceError, psycopg.OperationalError):
            return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        key = (gt is not None, lte is not None, desc, limit is not None)
        params = [originator_id, *(p for p in (gt, lte, limit) if p is not None)]
        rows = self._rows(key, lambda: self._select_statement(*key), params)
        if rows is None:  # the connection dropped: the library's way, which retries
            events: Sequence[StoredEvent] = super().select_events(
                originator_id, gt=gt, lte=lte, desc=desc, limit=limit
            )
            return events
        return [StoredEvent(**_stored(row)) for row in rows]
