"""Concurrent starts: one active run per site, and credits never over-committed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import Api, RunningServer

AUTOMATION = "/api/v1/automation"


def token_of(api: Api) -> str:
    return str(api.http.headers["authorization"]).split(" ", 1)[1]


def start_together(
    server: RunningServer, token: str, site_ids: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    """POST run_now for every site id at once, each from its own client and thread."""
    barrier = threading.Barrier(len(site_ids))

    def start(site_id: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            client.get("/healthz")  # connect before the barrier, so the starts collide
            barrier.wait(timeout=30)
            answer = client.post(f"{AUTOMATION}/run_now", params={"site_id": site_id})
            return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=len(site_ids)) as pool:
        return list(pool.map(start, site_ids))


def estimate(api: Api, site: str) -> dict[str, Any]:
    answer = api.get(f"{AUTOMATION}/estimate", site_id=site)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_48_concurrent_starts_of_one_site_make_exactly_one_run(
    server: RunningServer, new_account: Any
) -> None:
    api: Api = new_account(credits=10_000)
    site = api.site()
    assert api.keywords(site, ["one", "two", "three"]).status_code == 201
    required = estimate(api, site)["required_credits"]
    assert required > 0

    answers = start_together(server, token_of(api), [site] * 48)

    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] + [400] * 47, statuses
    winners = [body for status, body in answers if status == 202]
    losers = [body for status, body in answers if status != 202]
    assert all(body["error"]["code"] == "run_in_progress" for body in losers), losers
    run_id = winners[0]["run_id"]
    assert winners[0]["status"] == "running"

    runs = api.get(f"{AUTOMATION}/history", site_id=site).json()["runs"]
    assert [r["run_id"] for r in runs] == [run_id]
    current = api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
    assert current["run_id"] == run_id
    # Credits were reserved once, not once per attempt.
    assert estimate(api, site)["current_balance"] == 10_000 - required


def test_concurrent_starts_across_sites_never_overspend_credits(
    server: RunningServer, new_account: Any
) -> None:
    keywords = ["alpha shoes", "beta shoes", "gamma shoes", "delta shoes", "epsilon shoes"]
    probe: Api = new_account(name="Probe")
    probe_site = probe.site()
    assert probe.keywords(probe_site, keywords).status_code == 201
    required = int(estimate(probe, probe_site)["required_credits"])
    assert required > 0

    runs_affordable = 3
    initial = runs_affordable * required + required - 1  # one credit short of a fourth run
    api: Api = new_account(credits=initial, name="Buyer")
    sites = [api.site(f"Site {i}") for i in range(runs_affordable + 3)]
    for site in sites:
        assert api.keywords(site, keywords).status_code == 201
        assert estimate(api, site)["required_credits"] == required

    balances: list[int] = []
    stop = threading.Event()

    def watch_balance() -> None:
        while not stop.is_set():
            balances.append(int(estimate(api, sites[0])["current_balance"]))

    watcher = threading.Thread(target=watch_balance)
    watcher.start()
    try:
        answers = start_together(server, token_of(api), sites)
    finally:
        stop.set()
        watcher.join(timeout=30)

    accepted = [site for site, (status, _) in zip(sites, answers, strict=True) if status == 202]
    refused = [body for status, body in answers if status != 202]
    assert len(accepted) == runs_affordable, answers
    for body in refused:
        assert body["error"]["code"] == "insufficient_credits", body
        assert body["error"]["details"]["required"] == required
        assert 0 <= body["error"]["details"]["balance"] < required

    final = estimate(api, sites[0])["current_balance"]
    assert final == initial - runs_affordable * required
    assert all(balance >= 0 for balance in balances), balances
    assert all(balance >= final for balance in balances), balances
    for site in sites:
        runs = api.get(f"{AUTOMATION}/history", site_id=site).json()["runs"]
        current = api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
        if site in accepted:
            assert len(runs) == 1
            assert current is not None
            assert current["status"] == "running"
        else:
            assert runs == []
            assert current is None
