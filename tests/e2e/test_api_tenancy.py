"""Tenancy: another account's site or run is answered exactly as one that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Api

AUTOMATION = "/api/v1/automation"
KEYWORDS = "/api/v1/planner/keywords"

SITE_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", f"{AUTOMATION}/config", None),
    ("PUT", f"{AUTOMATION}/update_config", {"is_enabled": True, "stage_1_batch_size": 7}),
    ("POST", f"{AUTOMATION}/run_now", None),
    ("GET", f"{AUTOMATION}/current_run", None),
    ("GET", f"{AUTOMATION}/history", None),
    ("GET", f"{AUTOMATION}/estimate", None),
    ("GET", f"{AUTOMATION}/pipeline_overview", None),
    ("GET", f"{AUTOMATION}/current_processing", None),
    ("GET", f"{AUTOMATION}/schedule_preview", None),
    ("POST", KEYWORDS, {"keywords": ["planted by a stranger"]}),
    ("GET", KEYWORDS, None),
]

RUN_ENDPOINTS: list[tuple[str, str]] = [
    ("GET", f"{AUTOMATION}/logs"),
    ("POST", f"{AUTOMATION}/cancel"),
    ("POST", f"{AUTOMATION}/pause"),
    ("POST", f"{AUTOMATION}/resume"),
]


def call(api: Api, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
    if body is None:
        return api.http.request(method, path, params=params)
    return api.http.request(method, path, params=params, json=body)


def same_as_nonexistent(
    probe: httpx.Response, nonexistent: httpx.Response, status: int, code: str
) -> None:
    """The probe of a foreign id is answered exactly like the probe of an unknown id."""
    assert probe.status_code == status, probe.text
    assert nonexistent.status_code == status, nonexistent.text
    assert probe.json()["error"]["code"] == code, probe.text
    assert probe.json() == nonexistent.json(), (
        f"foreign id answered {probe.text}, unknown id answered {nonexistent.text}"
    )


@pytest.fixture
def victim(new_account: Any) -> tuple[Api, str, str]:
    """An account with a site holding a keyword and a running run: (client, site, run)."""
    owner: Api = new_account(name="Victim")
    site = owner.site("Victim's shop")
    assert owner.keywords(site, ["victim keyword"]).status_code == 201
    started = owner.run_now(site)
    assert started.status_code == 202, started.text
    return owner, site, str(started.json()["run_id"])


def victim_state(owner: Api, site: str) -> dict[str, Any]:
    return {
        "config": owner.get(f"{AUTOMATION}/config", site_id=site).json(),
        "run": owner.get(f"{AUTOMATION}/current_run", site_id=site).json(),
        "history": owner.get(f"{AUTOMATION}/history", site_id=site).json(),
        "keywords": owner.get(KEYWORDS, site_id=site).json(),
        "balance": owner.get(f"{AUTOMATION}/estimate", site_id=site).json()["current_balance"],
    }


def test_another_accounts_site_is_site_not_found_on_every_site_endpoint(
    victim: tuple[Api, str, str], new_account: Any
) -> None:
    owner, site, _ = victim
    intruder: Api = new_account(name="Intruder")
    intruder.site("Intruder's own shop")
    before = victim_state(owner, site)
    failures: list[str] = []
    for method, path, body in SITE_ENDPOINTS:
        probe = call(intruder, method, path, body, site_id=site)
        nonexistent = call(intruder, method, path, body, site_id=str(uuid.uuid4()))
        try:
            same_as_nonexistent(probe, nonexistent, 404, "site_not_found")
        except (AssertionError, ValueError, KeyError) as failure:
            failures.append(f"{method} {path}: {str(failure).splitlines()[0]}")
    assert not failures, "\n".join(failures)
    assert victim_state(owner, site) == before


def test_another_accounts_run_is_run_not_found_on_every_run_endpoint(
    victim: tuple[Api, str, str], new_account: Any
) -> None:
    owner, site, run_id = victim
    intruder: Api = new_account(name="Intruder")
    before = victim_state(owner, site)
    assert before["run"]["run"]["status"] == "running"
    failures: list[str] = []
    for method, path in RUN_ENDPOINTS:
        probe = call(intruder, method, path, run_id=run_id)
        nonexistent = call(intruder, method, path, run_id=str(uuid.uuid4()))
        try:
            same_as_nonexistent(probe, nonexistent, 404, "run_not_found")
        except (AssertionError, ValueError, KeyError) as failure:
            failures.append(f"{method} {path}: {str(failure).splitlines()[0]}")
    # Whatever the answers said, the victim's run was not touched.
    assert victim_state(owner, site) == before
    assert not failures, "\n".join(failures)


def test_a_paused_run_of_another_account_cannot_be_resumed_or_cancelled(
    victim: tuple[Api, str, str], new_account: Any
) -> None:
    owner, site, run_id = victim
    assert owner.post(f"{AUTOMATION}/pause", run_id=run_id).status_code == 200
    intruder: Api = new_account(name="Intruder")
    for action in ("resume", "cancel", "pause"):
        answer = intruder.post(f"{AUTOMATION}/{action}", run_id=run_id)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "run_not_found"
    run = owner.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
    assert (run["run_id"], run["status"]) == (run_id, "paused")


def test_current_processing_with_another_accounts_run_is_run_not_found(
    victim: tuple[Api, str, str], new_account: Any
) -> None:
    _, _, run_id = victim
    intruder: Api = new_account(name="Intruder")
    own_site = intruder.site("Intruder's own shop")
    path = f"{AUTOMATION}/current_processing"
    probe = intruder.get(path, site_id=own_site, run_id=run_id)
    nonexistent = intruder.get(path, site_id=own_site, run_id=str(uuid.uuid4()))
    same_as_nonexistent(probe, nonexistent, 404, "run_not_found")


def test_current_processing_with_a_malformed_run_id_is_invalid_request(api: Api) -> None:
    site = api.site()
    answer = api.get(f"{AUTOMATION}/current_processing", site_id=site, run_id="not-a-uuid")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "run_id" in answer.json()["error"]["details"]["fields"]


def test_sites_lists_only_the_callers_own_sites(new_account: Any) -> None:
    first: Api = new_account(name="First")
    second: Api = new_account(name="Second")
    mine = {first.site("First A"), first.site("First B", timezone="Europe/Berlin")}
    theirs = {second.site("Second A")}
    listed_first = first.get("/api/v1/sites").json()["results"]
    listed_second = second.get("/api/v1/sites").json()["results"]
    assert {s["site_id"] for s in listed_first} == mine
    assert {s["site_id"] for s in listed_second} == theirs
    by_id = {s["site_id"]: s for s in listed_first}
    assert {s["name"] for s in by_id.values()} == {"First A", "First B"}
    for entry in listed_first:
        assert set(entry) >= {"site_id", "name", "timezone", "created_at"}
    assert sorted(s["timezone"] for s in listed_first) == ["Europe/Berlin", "UTC"]
    third: Api = new_account(name="Third")
    assert third.get("/api/v1/sites").json() == {"results": []}


def test_the_same_keyword_in_two_accounts_is_not_a_duplicate(new_account: Any) -> None:
    first: Api = new_account(name="First")
    second: Api = new_account(name="Second")
    site_a, site_b = first.site(), second.site()
    assert first.keywords(site_a, ["shared keyword"]).json() == {"created": 1, "duplicates": 0}
    assert second.keywords(site_b, ["Shared Keyword"]).json() == {"created": 1, "duplicates": 0}
    listed = second.get(KEYWORDS, site_id=site_b).json()
    assert listed["count"] == 1
