"""Concurrent reads of one kind share one query: group reads for the hot endpoints.

On PostgreSQL each read costs a round trip, a hand-off to a worker thread and psycopg's
handling of the statement, about 0.2 ms of the process's CPU even for one primary-key
row, and under load the threads contend for the GIL and the pool. A group takes every read
of its kind that is waiting, for any sites, into one ``IN (...)`` query: under load the
query's cost is shared by all of them; alone, a read is one query as before.

A read only joins a query that starts after it arrived, never one already under way, so
it sees every commit made before it was asked (a client reads its own writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from weakref import WeakKeyDictionary

from automation.adapters.sql import Tx
from automation.api.reads import Reads

Fetch = Callable[[Tx, Sequence[str]], dict[str, str]]

MAX_KEYS = 200  # ids in one query; more waiting start the next one
MAX_QUERIES = 2  # queries of one group under way at once: one in the database, one unpacking


class ReadGroup:
    """One kind of hot read (a ``Fetch`` of rows by site id), grouped per query."""

    def __init__(self, reads: Reads, fetch: Fetch) -> None:
        self.reads = reads
        self.fetch = fetch
        self._waiting: list[tuple[str, asyncio.Future[str | None]]] = []
        self._queries = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def get(self, key: str) -> str | None:
        """The row of ``key``, read by a query that starts after this call."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        if self._queries < MAX_QUERIES:
            self._start()
        return await future

    def _start(self) -> None:
        batch, self._waiting = self._waiting[:MAX_KEYS], self._waiting[MAX_KEYS:]
        self._queries += 1
        task = asyncio.get_running_loop().create_task(self._query(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _query(self, batch: list[tuple[str, asyncio.Future[str | None]]]) -> None:
        try:
            rows = await self.reads.query(self.fetch, sorted({key for key, _ in batch}))
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # noqa: BLE001 - each read of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for key, future in batch:
                if not future.done():  # a cancelled read (the client went away) is skipped
                    future.set_result(rows.get(key))
        finally:
            self._queries -= 1
            if self._waiting and self._queries < MAX_QUERIES:
                self._start()


_GROUPS: WeakKeyDictionary[Reads, dict[Fetch, ReadGroup]] = WeakKeyDictionary()


def group_of(reads: Reads, fetch: Fetch) -> ReadGroup:
    """The group of ``fetch``'s reads over ``reads`` (one per app and kind)."""
    groups = _GROUPS.setdefault(reads, {})
    group = groups.get(fetch)
    if group is None:
        group = groups[fetch] = ReadGroup(reads, fetch)
    return group
