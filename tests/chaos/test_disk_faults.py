"""Chaos on the embedded default's disk: ``automation serve`` keeps its SQLite files on a
small filesystem of the test's own (a tmpfs), which is filled in the middle of a run and
then given back. A read-only remount would be the other way to refuse writes to root, but
the kernel refuses it (EBUSY) while SQLite holds its files open for writing, so filling the
disk is the fault rehearsed.

While the disk refuses writes, writes fail cleanly: a command is answered 503
``unavailable`` (never 500, never a dropped connection), the server stays up and answers
reads, and nothing of a refused command is kept. Once the disk takes writes again the run
completes (the seconds from then are measured and reported) with exactly what an undisturbed
run makes, exact credits and views equal to a rebuild. The batch watchdog is set to an hour:
only a prompt retry of the failed batches can finish the run in time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.support.chaos import Roles, Stack
from tests.support.chaos_faults import fill, small_disk
from tests.support.chaos_ledger import (
    CONFIG,
    KEYWORDS,
    check_books,
    eventually,
    ok,
    open_account,
    prepared_site,
    reached,
    recovery,
    verify_views,
)

pytestmark = pytest.mark.chaos


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


def refused(api: Api, attempts: list[int]) -> bool | None:
    """Try a write (register a site); True once it is refused as it should be."""
    answer = api.post("/api/v1/sites", {"name": f"During the fault {len(attempts)}"})
    attempts.append(answer.status_code)
    if answer.status_code == 201:
        return None  # the write still found room (SQLite reuses free pages): try again
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable", answer.text
    assert api.get("/healthz").status_code == 200  # the server is up and answering
    return True


def test_writes_fail_cleanly_while_the_disk_is_full_and_the_run_completes_after(
    disk: Path,
    new_stack: Callable[..., Stack],
    roles_of: Callable[..., Roles],
    undisturbed: Any,
    report: Callable[[str], None],
) -> None:
    stack = new_stack(production=False, data_dir=disk / "var")
    roles = roles_of(stack)
    api = open_account(stack, roles)
    site = prepared_site(api, KEYWORDS, CONFIG, "Starved")
    run_id = ok(api.run_now(site), 202)["run_id"]
    reached(api, run_id, 3)
    attempts: list[int] = []

    def fault(ended: Callable[[], None]) -> None:
        log = roles["serve"].log
        seen = log.stat().st_size
        filler = fill(disk)
        try:
            eventually(lambda: refused(api, attempts), "a command refused", 30)
            # Held until the pipeline itself has failed a write, so the fault did bite it.
            eventually(
                lambda: "disk is full" in log.read_text(errors="replace")[seen:] or None,
                "the pipeline failing a write",
                60,
            )
        finally:
            filler.unlink()
        ended()

    times = recovery(stack, api, run_id, fault)
    report(
        f"disk full: {attempts.count(503)} commands refused with 503; the run's next event "
        f"{times['progress']:.2f} s and its completion {times['completed']:.2f} s after"
    )
    assert roles["serve"].alive()
    # Nothing of a refused write was kept: the sites are this one and the accepted ones.
    sites = ok(api.get("/api/v1/sites"))["results"]
    assert len(sites) == 1 + attempts.count(201)
    check_books(api, site, run_id, undisturbed)
    verify_views(stack)
