"""Grouped hot reads (api/read_groups.py): reads waiting at once share one query, each gets
its own site's row, and no read is answered by a query that began before it was asked."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from uuid import UUID

import pytest

from automation.adapters.sql import Tx
from automation.api.read_groups import MAX_QUERIES, ReadGroup
from automation.api.reads import Reads
from automation.bootstrap import Services
from automation.domain.estimate import PendingWork
from projections.current_run import current_run_body
from projections.hot_rows import current_run_bodies


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: the API groups reads there (SQLite reads run inline on the loop,
    where a query held open would hold the loop too)."""
    return str(request.param)


def _running_runs(services: Services, count: int) -> tuple[UUID, list[UUID], list[UUID]]:
    """An account with ``count`` sites, each with a running run, projected."""
    account_id, _ = services.app.open_account("Acme", 100_000)
    sites, runs = [], []
    for number in range(count):
        site = services.app.register_site(account_id, f"Site {number}", "UTC").value.id
        runs.append(services.app.start_run(account_id, site, PendingWork(keywords=5)).value.id)
        sites.append(site)
    services.projector.catch_up()
    return account_id, sites, runs


def test_waiting_reads_share_queries_and_each_gets_its_own_sites_row(
    services: Services,
) -> None:
    _, sites, _ = _running_runs(services, 6)
    idle_site = services.app.register_site(
        services.app.open_account("Other", 0)[0], "Idle", "UTC"
    ).value.id
    services.projector.catch_up()
    asked = [*sites * 5, idle_site]  # 31 reads, all waiting at once
    queries: list[list[str]] = []

    def counted(tx: Tx, keys: Sequence[str]) -> dict[str, str]:
        queries.append(list(keys))
        return current_run_bodies(tx, keys)

    group = ReadGroup(Reads(services), counted)

    async def read_all() -> list[str | None]:
        return await asyncio.gather(*(group.get(str(site)) for site in asked))

    bodies = asyncio.run(read_all())
    with services.views.read() as tx:
        alone = {site: current_run_body(tx, site) for site in asked}
    assert bodies == [alone[site] for site in asked]  # each read its own site's row
    assert alone[idle_site] is None
    assert all(alone[site] for site in sites)
    # The first MAX_QUERIES reads start a query each; all the others share the next one.
    assert len(queries) == MAX_QUERIES + 1
    shared = max(queries, key=len)  # the queries run in threads, in any order
    assert sorted(shared) == sorted({str(site) for site in asked[MAX_QUERIES:]})


def test_a_read_is_never_answered_by_a_query_begun_before_it(services: Services) -> None:
    account_id, sites, runs = _running_runs(services, 1)
    site = str(sites[0])
    begun, release = threading.Event(), threading.Event()

    def held_once(tx: Tx, keys: Sequence[str]) -> dict[str, str]:
        rows = current_run_bodies(tx, keys)  # read before the run is cancelled...
        if not begun.is_set():
            begun.set()
            release.wait(10)  # ...and answered after it
        return rows

    group = ReadGroup(Reads(services), held_once)

    async def scenario() -> tuple[str | None, str | None]:
        first = asyncio.create_task(group.get(site))
        assert await asyncio.to_thread(begun.wait, 10)
        services.app.cancel_run(account_id, runs[0])
        services.projector.catch_up()
        second = asyncio.create_task(group.get(site))
        await asyncio.sleep(0.05)  # give a wrong implementation time to join the first
        release.set()
        return await first, await second

    before, after = asyncio.run(scenario())
    assert before is not None
    assert '"running"' in before
    assert after is None  # the cancelled run is no longer the site's current run


def test_a_failed_query_fails_its_reads_and_the_next_reads_query_again(
    services: Services,
) -> None:
    _, sites, _ = _running_runs(services, 1)
    calls: list[int] = []

    def fails_first(tx: Tx, keys: Sequence[str]) -> dict[str, str]:
        calls.append(len(keys))
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return current_run_bodies(tx, keys)

    group = ReadGroup(Reads(services), fails_first)

    async def twice() -> str | None:
        with pytest.raises(RuntimeError, match="went away"):
            await asyncio.wait_for(group.get(str(sites[0])), 10)
        return await asyncio.wait_for(group.get(str(sites[0])), 10)

    assert asyncio.run(twice()) is not None
    assert len(calls) == 2
