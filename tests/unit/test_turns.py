"""Taking turns per key, and combining what queues up meanwhile."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from automation.application.turns import Combiner, KeyedLocks


def test_every_item_is_handled_once_in_lists_per_key_and_each_caller_gets_its_answer() -> None:
    handled: list[tuple[str, list[int]]] = []
    busy: dict[str, int] = {}
    overlap = threading.Lock()

    def handle(key: str, items: list[int]) -> list[int]:
        with overlap:
            busy[key] = busy.get(key, 0) + 1
            assert busy[key] == 1, "one list per key at a time"
        time.sleep(0.002)  # slow enough for callers to queue up behind it
        with overlap:
            busy[key] -= 1
            handled.append((key, list(items)))
        return list(items)

    combine: Combiner[str, int, list[int]] = Combiner(handle)
    start = threading.Barrier(32)

    def call(number: int) -> tuple[int, list[int]]:
        start.wait()
        return number, combine(f"key{number % 3}", number)

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(call, range(32)))
    every = sorted(item for _, items in handled for item in items)
    assert every == list(range(32))  # nothing lost, nothing twice
    assert all(item % 3 == int(key[3:]) for key, items in handled for item in items)
    for number, answer in answers:
        assert number in answer  # the answer for the list the caller's item was in
    assert any(len(items) > 1 for _, items in handled)  # queued items were combined


def test_a_failure_reaches_every_caller_of_its_list_and_the_next_list_still_runs() -> None:
    calls: list[list[str]] = []

    def handle(key: str, items: list[str]) -> str:
        calls.append(items)
        if "bad" in items:
            raise ValueError("refused")
        return "ok"

    combine: Combiner[str, str, str] = Combiner(handle)
    with pytest.raises(ValueError, match="refused"):
        combine("k", "bad")
    assert combine("k", "good") == "ok"
    assert calls == [["bad"], ["good"]]


def test_keyed_locks_exclude_per_key_and_forget_unused_keys() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    guard = threading.Lock()

    def work(key: str) -> None:
        with locks(key):
            with guard:
                inside[key] += 1
                most[key] = max(most[key], inside[key])
            time.sleep(0.001)
            with guard:
                inside[key] -= 1

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, ["a", "b"] * 20))
    assert most == {"a": 1, "b": 1}
    assert locks._locks == {}
