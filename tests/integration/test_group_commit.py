"""Concurrent saves on PostgreSQL share transactions without losing their independence."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, RecordConflictError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from automation.adapters.group_commit import GroupCommitRecorder, _Save
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


def test_events_are_stored_and_selected_exactly_as_the_library_does(services: Services) -> None:
    """The recorder's own statements (plain arrays, rendered once) store the same rows and
    return the same ids in the same order, and every kind of selection gives what the
    library's statements give."""
    app = services.app
    recorder = app.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    account = Account.open("selected")
    for amount in range(1, 12):
        account.grant(amount)
    pending = account.collect_events()
    stored = [app.mapper.to_stored_event(e) for e in pending]
    ids = recorder.insert_events(stored)
    assert ids is not None
    assert list(ids) == sorted(ids)
    assert len(ids) == len(stored) == 12
    notes = recorder.select_notifications(ids[0], limit=12)
    assert [(n.id, n.originator_version, n.state) for n in notes] == [
        (i, e.originator_version, e.state) for i, e in zip(ids, stored, strict=True)
    ]
    library = PostgresApplicationRecorder.select_events
    for gt in (None, 3):
        for lte in (None, 9):
            for desc in (False, True):
                for limit in (None, 2):
                    ours = recorder.select_events(
                        account.id, gt=gt, lte=lte, desc=desc, limit=limit
                    )
                    theirs = library(recorder, account.id, gt=gt, lte=lte, desc=desc, limit=limit)
                    assert ours == theirs, (gt, lte, desc, limit)
                    assert ours  # every combination selects something here
    assert [e.originator_version for e in recorder.select_events(account.id, gt=9)] == [10, 11, 12]


def _stored(services: Services, account: Account) -> list[StoredEvent]:
    return [services.app.mapper.to_stored_event(e) for e in account.collect_events()]


def _conflicting_save(services: Services) -> tuple[Account, list[StoredEvent]]:
    """An account whose version 2 is taken, and another save of a version 2 for it."""
    app = services.app
    taken = Account.open("taken")
    app.save(taken)
    clash = app.repository.get(taken.id)
    clash.grant(1)
    clashing = _stored(services, clash)
    winner = app.repository.get(taken.id)
    winner.grant(2)
    app.save(winner)  # version 2 is now taken: ``clashing`` conflicts
    return taken, clashing


def test_a_batch_with_a_conflict_commits_every_other_save(services: Services) -> None:
    """The saves of a batch go in as one statement; when one conflicts, that statement
    fails and each save is written alone, so only the conflicting one fails."""
    app = services.app
    recorder = app.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    taken, clashing = _conflicting_save(services)
    fresh = [_stored(services, Account.open(f"fresh {i}")) for i in range(3)]
    batch = [_Save(fresh[0]), _Save(clashing), _Save(fresh[1]), _Save(fresh[2])]
    recorder._write(batch)
    assert isinstance(batch[1].error, IntegrityError)
    assert batch[1].ids is None
    written = [batch[0], batch[2], batch[3]]
    assert all(save.error is None and save.ids for save in written)
    ids = [i for save in written for i in save.ids or []]
    assert ids == sorted(ids)
    assert app.balance(taken.id) == 2
    for events in fresh:
        assert app.repository.get(events[0].originator_id).name.startswith("fresh")

    alone = _Save(clashing)  # a batch of one: the whole transaction is that save
    recorder._write([alone])
    assert isinstance(alone.error, IntegrityError)
    assert alone.ids is None


def test_the_log_is_read_exactly_as_the_library_reads_it(services: Services) -> None:
    app = services.app
    recorder = app.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    for number in range(7):
        app.open_account(f"reader {number}", 1)
    last = recorder.max_notification_id() or 0
    library = PostgresApplicationRecorder.select_notifications
    for start in (0, 1, last - 3, last, last + 1):
        for limit in (1, 5, 100):
            for inclusive in (True, False):
                ours = recorder.select_notifications(start, limit, inclusive_of_start=inclusive)
                theirs = library(recorder, start, limit, inclusive_of_start=inclusive)
                assert ours == theirs, (start, limit, inclusive)
    assert [n.id for n in recorder.select_notifications(last - 3, 2, inclusive_of_start=False)] == [
        last - 2,
        last - 1,
    ]


def test_every_write_takes_the_log_lock_before_it_draws_an_id(services: Services) -> None:
    """What keeps commit order equal to id order: while another transaction holds the log's
    lock, a save (alone, or in a batch that falls back to one save at a time) waits
    without drawing a notification id, and goes on once the lock is released."""
    app = services.app
    recorder = app.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    url, schema = services.settings.database_url, services.settings.database_schema
    assert url
    assert schema
    _, clashing = _conflicting_save(services)
    batches = {
        "one statement": [_Save(_stored(services, Account.open("alone")))],
        "one save at a time": [_Save(_stored(services, Account.open("beside"))), _Save(clashing)],
    }
    with psycopg.connect(url, autocommit=True) as conn:
        sequence = conn.execute(
            "SELECT pg_get_serial_sequence(%s, 'notification_id')",
            (f'"{schema}".automation_events',),
        ).fetchone()
        assert sequence
        assert sequence[0]

        def last_id() -> int:
            row = conn.execute(f"SELECT last_value FROM {sequence[0]}").fetchone()
            assert row
            return int(row[0])

        for name, batch in batches.items():
            before = last_id()
            with psycopg.connect(url) as holder:
                holder.execute("SELECT pg_advisory_xact_lock(%s)", (recorder.lock_key,))
                writer = threading.Thread(target=recorder._write, args=(batch,))
                writer.start()
                writer.join(timeout=0.5)
                assert writer.is_alive(), f"{name}: wrote while the log was locked"
                assert last_id() == before, f"{name}: drew an id before taking the lock"
                holder.rollback()
            writer.join(timeout=10)
            assert not writer.is_alive()
            assert batch[0].error is None
            assert batch[0].ids
            assert min(batch[0].ids) > before
    assert isinstance(batches["one save at a time"][1].error, IntegrityError)
