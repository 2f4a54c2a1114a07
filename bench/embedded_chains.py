"""The embedded stack's floor: textbook durable chains in one process on SQLite.

Each step of a 7-step chain commits one row to a SQLite file in WAL mode with
``synchronous=FULL`` (the embedded event store's setting: the library's default) from a
worker thread, and only then hands the next step on through an asyncio queue, taken by one
of 8 consumer tasks (as many as the embedded stack's in-process consumers). That is what
"every step is durable" costs in one process at the least: no event, no projection, no
aggregate, one commit a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHAIN_LENGTH = 7
CONSUMERS = 8


@dataclass(frozen=True)
class ChainsResult:
    chains: int
    seconds: float
    steps_committed: int

    @property
    def chains_per_s(self) -> float:
        return self.chains / self.seconds if self.seconds else 0.0

    @property
    def missing(self) -> int:
        """Steps that were not committed (0 when every chain ran to its end)."""
        return self.chains * CHAIN_LENGTH - self.steps_committed


def run_chains(path: Path, chains: int, first: int) -> ChainsResult:
    """Run ``chains`` chains (ids from ``first``) to their end; time them."""
    return asyncio.run(_run(path, chains, first))


async def _run(path: Path, chains: int, first: int) -> ChainsResult:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS steps (chain INTEGER, step INTEGER, PRIMARY KEY (chain, step))"
    )
    writer = threading.Lock()  # one connection, one writer at a time (SQLite's rule anyway)

    def commit(chain: int, step: int) -> None:
        with writer:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO steps VALUES (?, ?)", (chain, step))
            connection.execute("COMMIT")

    steps: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    finished = asyncio.Event()
    left = chains

    async def consume() -> None:
        nonlocal left
        while True:
            chain, step = await steps.get()
            await asyncio.to_thread(commit, chain, step)
            if step < CHAIN_LENGTH:
                steps.put_nowait((chain, step + 1))
            else:
                left -= 1
                if left == 0:
                    finished.set()

    consumers = [asyncio.create_task(consume()) for _ in range(CONSUMERS)]
    started = time.perf_counter()
    for chain in range(first, first + chains):
        steps.put_nowait((chain, 1))
    with contextlib.suppress(TimeoutError):  # a lost step shows as missing, below
        await asyncio.wait_for(finished.wait(), timeout=60)
    seconds = time.perf_counter() - started
    for consumer in consumers:
        consumer.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    committed = connection.execute(
        "SELECT COUNT(*) FROM steps WHERE chain >= ? AND chain < ?", (first, first + chains)
    ).fetchone()[0]
    connection.close()
    return ChainsResult(chains, seconds, int(committed))
