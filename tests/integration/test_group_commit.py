"""Concurrent saves on PostgreSQL share transactions without losing their independence."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventsourcing.persistence import RecordConflictError

from automation.adapters.group_commit import GroupCommitRecorder
from automation.bootstrap import Services
from automation.domain.account import Account


@pytest.fixture
def backend() -> str:
    return "postgres"


def test_the_postgres_store_uses_the_group_commit_recorder(services: Services) -> None:
    assert isinstance(services.app.recorder, GroupCommitRecorder)


def test_concurrent_saves_all_commit_and_a_conflict_fails_alone(services: Services) -> None:
    app = services.app
    accounts = [Account.open(f"a{i}") for i in range(40)]
    start = threading.Barrier(40)

    def save(account: Account) -> int:
        start.wait()
        return app._save(account)

    with ThreadPoolExecutor(40) as pool:
        positions = list(pool.map(save, accounts))
    assert sorted(positions) == list(range(min(positions), min(positions) + 40))

    # Two writers racing for the same next version of one account, among other saves:
    # exactly one of the two wins, and every unrelated save commits.
    contested = [app.repository.get(accounts[0].id) for _ in range(2)]
    for copy in contested:
        copy.grant(5)
    others = [app.repository.get(a.id) for a in accounts[1:20]]
    for other in others:
        other.grant(1)
    start = threading.Barrier(len(contested) + len(others))
    outcomes: list[str] = []

    def attempt(aggregate: Account) -> None:
        start.wait()
        try:
            app.save(aggregate)
            outcomes.append("ok" if aggregate in others else "won")
        except RecordConflictError:
            outcomes.append("conflict")

    with ThreadPoolExecutor(len(contested) + len(others)) as pool:
        list(pool.map(attempt, [*contested, *others]))
    assert sorted(outcomes).count("won") == 1
    assert outcomes.count("conflict") == 1
    assert outcomes.count("ok") == len(others)
    assert app.balance(accounts[0].id) == 5
    assert all(app.balance(a.id) == 1 for a in accounts[1:20])
