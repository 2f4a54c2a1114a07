"""Runs and slots page by page: history and the account-wide listing, with filters and
cursors, over HTTP on both backends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from tests.conftest import Api, RunningServer, error_code

AUTOMATION = "/api/v1/automation"


def started_and_cancelled(api: Api, site: str, count: int) -> list[str]:
    """``count`` runs of the site, each cancelled at once but the last; oldest first."""
    ids = []
    for n in range(count):
        answer = api.run_now(site)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["run_id"])
        if n < count - 1:
            assert api.post(f"{AUTOMATION}/cancel", run_id=ids[-1]).status_code == 200
    return ids


def every_page(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = api.get(path, **params, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["runs"]) <= params.get("limit", 20)
        listed += body["runs"]
        cursor = body["next_cursor"]
        if cursor is None:
            return listed


def test_45_runs_page_through_history_and_runs_without_a_gap_or_repeat(
    api: Api, new_account: Any
) -> None:
    first, second = api.site("First"), api.site("Second")
    for site in (first, second):
        assert api.keywords(site, ["a keyword"]).status_code == 201
    runs = {
        first: started_and_cancelled(api, first, 23),
        second: started_and_cancelled(api, second, 22),
    }
    stranger = new_account()
    stranger_site = stranger.site()
    assert stranger.keywords(stranger_site, ["theirs"]).status_code == 201
    started_and_cancelled(stranger, stranger_site, 2)

    for site, ids in runs.items():
        listed = every_page(api, f"{AUTOMATION}/history", site_id=site, limit=7)
        assert [r["run_id"] for r in listed] == ids[::-1]
    everything = every_page(api, f"{AUTOMATION}/runs", limit=10)
    assert len(everything) == 45
    assert {r["run_id"] for r in everything} == {*runs[first], *runs[second]}
    started = [r["started_at"] for r in everything]
    assert started == sorted(started, reverse=True)

    running = every_page(api, f"{AUTOMATION}/runs", status="running")
    assert sorted(r["run_id"] for r in running) == sorted([runs[first][-1], runs[second][-1]])
    assert all({"paused_at", "resumed_at", "processed", "created"} <= set(r) for r in running)
    assert every_page(api, f"{AUTOMATION}/runs", trigger="scheduled") == []
    assert len(every_page(api, f"{AUTOMATION}/runs", trigger="manual", status="cancelled")) == 43
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert every_page(api, f"{AUTOMATION}/runs", since=later) == []
    assert len(every_page(api, f"{AUTOMATION}/history", site_id=first, until=later)) == 23

    plain = api.get(f"{AUTOMATION}/history", site_id=first).json()
    assert set(plain) == {"runs"}  # without paging or filters: as it always answered
    assert [r["run_id"] for r in plain["runs"]] == runs[first][::-1][:20]


def test_unknown_or_malformed_listing_parameters_are_refused(api: Api) -> None:
    site = api.site()
    for path, params, field in (
        ("runs", {"sort": "asc"}, "sort"),
        ("runs", {"limit": "0"}, "limit"),
        ("runs", {"limit": "101"}, "limit"),
        ("runs", {"limit": "18446744073709551616"}, "limit"),
        ("runs", {"cursor": "not-a-cursor"}, "cursor"),
        ("runs", {"status": "sleeping"}, "status"),
        ("runs", {"since": "yesterday"}, "since"),
        ("history", {"site_id": site, "offset": "20"}, "offset"),
        ("slots", {"site_id": site, "status": "started"}, "status"),
    ):
        answer = api.get(f"{AUTOMATION}/{path}", **params)
        assert answer.status_code == 400, (path, params, answer.text)
        assert error_code(answer) == "invalid_request"
        assert field in answer.json()["error"]["details"]["fields"]


def test_a_sites_scheduled_slots_are_listed_started_skipped_and_missed(
    server: RunningServer, api: Api
) -> None:
    site = api.site()
    app = server.services.app
    now = app.clock.now()
    site_id = UUID(site)
    app.record_skipped_slot(site_id, "2026-01-01", now - timedelta(days=2), "missed")
    app.record_skipped_slot(site_id, "2026-01-02", now - timedelta(days=1), "insufficient_credits")
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while True:
        answer = api.get(f"{AUTOMATION}/slots", site_id=site, limit=1)
        assert answer.status_code == 200, answer.text
        if answer.json()["slots"] or datetime.now(UTC) > deadline:
            break
        time.sleep(0.05)  # the slots view follows the log
    first = answer.json()
    assert [s["slot"] for s in first["slots"]] == ["2026-01-02"]
    assert first["slots"][0]["outcome"] == "skipped"
    assert first["slots"][0]["reason"] == "insufficient_credits"
    rest = api.get(f"{AUTOMATION}/slots", site_id=site, cursor=first["next_cursor"]).json()
    assert [(s["slot"], s["outcome"]) for s in rest["slots"]] == [("2026-01-01", "missed")]
    assert rest["next_cursor"] is None
