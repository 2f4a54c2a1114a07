"""Taking turns on one aggregate within a process, and combining the work that queues up.

Several batches of a run finish at about the same time, each in its own worker thread, and
each must be recorded on the run. Saved independently, they collide (optimistic
concurrency): all but one fail, reload and try again, and the retries collide again.
Instead, the threads of one process take turns on the run (``KeyedLocks``), and the
records that queue up while one is being written are written together, in one load and
one save (``Combiner``). Processes still meet only through optimistic concurrency.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - the conventional name of an item type
R = TypeVar("R")


class KeyedLocks(Generic[K]):
    """A lock per key, alive while someone holds or waits for it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[K, tuple[threading.Lock, int]] = {}

    @contextmanager
    def __call__(self, key: K) -> Iterator[None]:
        with self._mutex:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._mutex:
                _, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class _Entry(Generic[I, R]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: I) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class Combiner(Generic[K, I, R]):
    """Hands items to ``handle`` in lists, per key: the first caller for a key handles its
    item and then whatever queued for that key meanwhile, until nothing is left; the other
    callers wait for the answer to the list their item was in."""

    def __init__(self, handle: Callable[[K, list[I]], R]) -> None:
        self._handle = handle
        self._mutex = threading.Lock()
        self._queues: dict[K, list[_Entry[I, R]]] = {}  # a key is here while it is handled

    def __call__(self, key: K, item: I) -> R:
        entry: _Entry[I, R] = _Entry(item)
        with self._mutex:
            queue = self._queues.get(key)
            leads = queue is None
            if queue is None:
                queue = self._queues[key] = []
            queue.append(entry)
        if leads:
            self._drain(key)
        entry.done.wait()
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]  # set whenever error is None

    def _drain(self, key: K) -> None:
        while True:
            with self._mutex:
                batch = self._queues[key]
                if not batch:
                    del self._queues[key]
                    return
                self._queues[key] = []
            try:
                result = self._handle(key, [entry.item for entry in batch])
            except BaseException as error:  # noqa: BLE001 - every waiter gets it
                for entry in batch:
                    entry.error = error
                    entry.done.set()
                continue
            for entry in batch:
                entry.result = result
                entry.done.set()
