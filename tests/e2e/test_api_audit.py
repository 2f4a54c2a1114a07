"""Audit over HTTP: a run's stored events, its state at any event, and its live stream."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Api, error_code


def controlled_run(api: Api) -> tuple[str, str]:
    site = api.site()
    assert api.keywords(site, ["trail shoes", "espresso beans"]).status_code == 201
    run_id = api.run_now(site).json()["run_id"]
    for action in ("pause", "resume", "pause", "cancel"):
        assert api.post(f"/api/v1/automation/{action}", run_id=run_id).status_code == 200
    return site, run_id


def sse_messages(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if fields:
            messages.append(fields)
    return messages


def test_the_events_listing_is_the_runs_history_in_order(api: Api) -> None:
    _, run_id = controlled_run(api)
    answer = api.get(f"/api/v1/automation/runs/{run_id}/events")
    assert answer.status_code == 200
    events = answer.json()["events"]
    assert [e["type"] for e in events] == [
        "RunStarted",
        "RunPaused",
        "RunResumed",
        "RunPaused",
        "RunCancelled",
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]
    assert all(set(e) >= {"id", "version", "type", "timestamp", "data"} for e in events)
    assert len({e["id"] for e in events}) == 5
    page = api.get(f"/api/v1/automation/runs/{run_id}/events", after_version=2, limit=2)
    assert [e["version"] for e in page.json()["events"]] == [3, 4]


def test_the_state_at_each_version_is_the_run_as_it_stood(api: Api) -> None:
    site, run_id = controlled_run(api)
    statuses = []
    for version in range(1, 6):
        answer = api.get(f"/api/v1/automation/runs/{run_id}/state", version=version)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == version
        statuses.append(answer.json()["run"]["status"])
    assert statuses == ["running", "paused", "running", "paused", "cancelled"]
    # Without a version: the latest state, and which version that is.
    now = api.get(f"/api/v1/automation/runs/{run_id}/state").json()
    assert now["version"] == 5
    latest = now["run"]
    listed = api.get("/api/v1/automation/history", site_id=site).json()["runs"][0]
    assert (latest["status"], latest["completed_at"]) == (listed["status"], listed["completed_at"])
    beyond = api.get(f"/api/v1/automation/runs/{run_id}/state", version=6)
    assert (beyond.status_code, error_code(beyond)) == (400, "invalid_request")
    zero = api.get(f"/api/v1/automation/runs/{run_id}/state", version=0)
    assert (zero.status_code, error_code(zero)) == (400, "invalid_request")


def test_another_account_gets_404_for_every_audit_read(api: Api, new_account: Any) -> None:
    _, run_id = controlled_run(api)
    stranger = new_account()
    for path in ("events", "state", "stream"):
        answer = stranger.get(f"/api/v1/automation/runs/{run_id}/{path}")
        assert (answer.status_code, error_code(answer)) == (404, "run_not_found"), path
    bad = api.get("/api/v1/automation/runs/not-a-uuid/events")
    assert (bad.status_code, error_code(bad)) == (400, "invalid_request")


def test_the_stream_replays_the_history_ends_after_the_terminal_event_and_resumes(
    api: Api,
) -> None:
    _, run_id = controlled_run(api)
    with api.http.stream("GET", f"/api/v1/automation/runs/{run_id}/stream") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        text = "".join(answer.iter_text())
    messages = sse_messages(text)
    assert [m["event"] for m in messages] == [
        "RunStarted",
        "RunPaused",
        "RunResumed",
        "RunPaused",
        "RunCancelled",
    ]
    assert [m["id"] for m in messages] == ["1", "2", "3", "4", "5"]
    headers = {"Last-Event-ID": "3"}
    resumed = api.http.get(f"/api/v1/automation/runs/{run_id}/stream", headers=headers)
    assert [m["id"] for m in sse_messages(resumed.text)] == ["4", "5"]
    at_end = api.http.get(
        f"/api/v1/automation/runs/{run_id}/stream",
        headers={"Last-Event-ID": "5"},
        timeout=httpx.Timeout(10),
    )
    assert at_end.status_code == 200
    assert sse_messages(at_end.text) == []


def test_hundreds_of_live_followers_each_get_every_event_once_in_order(api: Api) -> None:
    import asyncio

    site = api.site()
    run_id = api.run_now(site).json()["run_id"]
    followers = 200
    connected = 0
    all_connected = asyncio.Event()

    async def follow(client: httpx.AsyncClient) -> list[str]:
        nonlocal connected
        path = f"/api/v1/automation/runs/{run_id}/stream"
        async with client.stream("GET", path) as answer:
            assert answer.status_code == 200
            connected += 1
            if connected == followers:
                all_connected.set()
            text = ""
            async for chunk in answer.aiter_text():
                text += chunk
        return [m["event"] for m in sse_messages(text)]

    async def steer() -> None:
        await asyncio.wait_for(all_connected.wait(), 60)
        for action in ("pause", "resume", "cancel"):
            answer = await asyncio.to_thread(
                api.post, f"/api/v1/automation/{action}", run_id=run_id
            )
            assert answer.status_code == 200

    async def main() -> list[list[str]]:
        limits = httpx.Limits(max_connections=followers + 10)
        async with httpx.AsyncClient(
            base_url=str(api.http.base_url),
            limits=limits,
            headers=dict(api.http.headers),
            timeout=60,
        ) as client:
            streams = [asyncio.create_task(follow(client)) for _ in range(followers)]
            await steer()
            return await asyncio.gather(*streams)

    seen = asyncio.run(main())
    expected = ["RunStarted", "RunPaused", "RunResumed", "RunCancelled"]
    assert all(events == expected for events in seen), {tuple(e) for e in seen}
