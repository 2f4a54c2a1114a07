"""The background roles' thread pool: results, errors, and a cancelled caller that waits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from consumers.threads import Threads


def test_returns_the_result_and_raises_the_error_of_the_call() -> None:
    threads = Threads("test")

    def fail() -> None:
        raise ValueError("boom")

    async def main() -> int:
        with pytest.raises(ValueError, match="boom"):
            await threads.run(fail)
        return await threads.run(sum, [1, 2, 3])

    try:
        assert asyncio.run(main()) == 6
    finally:
        threads.close()


def test_a_cancelled_caller_waits_for_its_call_to_end() -> None:
    """A graceful stop cancels busy consumers: each must not give its message back while
    its batch still runs in the thread, or the batch would run twice side by side."""
    threads = Threads("test")
    release = threading.Event()
    finished = threading.Event()

    def batch() -> str:
        release.wait(5)
        finished.set()
        return "done"

    async def main() -> None:
        task = asyncio.create_task(threads.run(batch))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.1)
        assert not task.done(), "the caller returned while its call still ran"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set()

    try:
        asyncio.run(main())
    finally:
        threads.close()
