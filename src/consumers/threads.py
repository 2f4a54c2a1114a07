"""Blocking calls off the event loop, for the background roles' hot paths.

anyio's ``to_thread.run_sync`` (what FastAPI's handlers use) detects the async library,
takes a capacity limiter's token and opens a cancel scope on every call: about 80 µs of
CPU a call here, against about 35 µs for a plain executor (uvloop, eight callers at
once), and a stage worker makes such a call for every batch, the orchestrator a few for
every step. The roles run on asyncio alone, so a plain executor does; a pool of their own
also keeps a worker's long AI batches from taking the threads the API's handlers share.
As with anyio's default, a caller that is cancelled still waits for its call to end (a
thread cannot be stopped), so a graceful stop never hands back a message whose batch is
still running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple, Unpack

T = TypeVar("T")
Args = TypeVarTuple("Args")


class Threads:
    """A pool of threads of a role's own; ``await threads.run(fn, *args)``."""

    def __init__(self, name: str, size: int = 32) -> None:
        # Threads start on demand, so ``size`` only caps them (each run of a role
        # needs about as many as it has calls at once: its prefetch).
        self._pool = ThreadPoolExecutor(size, thread_name_prefix=name)

    async def run(self, fn: Callable[[Unpack[Args]], T], *args: *Args) -> T:
        future = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])  # the call runs on: let it end first
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False)
