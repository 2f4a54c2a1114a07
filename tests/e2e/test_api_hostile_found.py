"""The hostile requests that once broke the API, each on its own (the sweeps of
test_api_hostile.py cover them too, among everything else), on both backends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Api, RunningServer

PAST_64_BITS = "18446744073709551616"
AUTOMATION = "/api/v1/automation"


@pytest.fixture
def run(api: Api) -> tuple[str, str]:
    site = api.site()
    assert api.keywords(site, ["trail shoes"]).status_code == 201
    run_id = api.run_now(site).json()["run_id"]
    assert api.post(f"{AUTOMATION}/cancel", run_id=run_id).status_code == 200
    return site, run_id


def _assert_invalid(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request", error
    assert field in error["details"]["fields"], error


def test_numbers_past_64_bits_are_invalid_request(api: Api, run: tuple[str, str]) -> None:
    runs = f"{AUTOMATION}/runs/{run[1]}"
    for big in (PAST_64_BITS, str(2**63), "-" + PAST_64_BITS):
        _assert_invalid(api.get(f"{runs}/state", version=big), "version")
        _assert_invalid(api.get(f"{runs}/events", after_version=big), "after_version")
        _assert_invalid(api.get(f"{runs}/stream", after_version=big), "after_version")
        answer = api.http.get(f"{runs}/stream", headers={"Last-Event-ID": big})
        _assert_invalid(answer, "last-event-id")
    # The largest number the stores hold is an answer, not an error.
    answer = api.get(f"{runs}/events", after_version=2**63 - 1)
    assert answer.status_code == 200
    assert answer.json()["events"] == []
    _assert_invalid(api.get(f"{runs}/state", version=2**63 - 1), "version")  # past the run


@pytest.mark.parametrize(
    "keywords",
    [["\ud800"], [{"keyword": "\udfff"}], [{"keyword": "x", "volume": "\ud800"}]],
)
def test_a_lone_surrogate_is_invalid_request_and_keeps_nothing(
    api: Api, run: tuple[str, str], keywords: list[Any]
) -> None:
    site = run[0]
    answer = api.http.post(
        "/api/v1/planner/keywords",
        params={"site_id": site},
        content=json.dumps({"keywords": ["fine keyword", *keywords]}),  # sent as "\ud800"
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    count = api.get("/api/v1/planner/keywords", site_id=site).json()["count"]
    assert count == 1  # the run's keyword only


def test_a_nul_or_control_character_in_a_query_parameter_is_invalid_request(
    api: Api, run: tuple[str, str]
) -> None:
    site = run[0]
    for path in ("/api/v1/planner/keywords", "/api/v1/writer/content"):
        for raw in ("%00", "new%00", "%1b", "%C2%85"):
            answer = api.http.get(f"{path}?site_id={site}&status={raw}")
            _assert_invalid(answer, "status")


BAD_BODIES: list[tuple[str, str, Any]] = [
    ("PUT", f"{AUTOMATION}/update_config", {"stage_1_batch_size": "many", "nope": 1}),
    ("POST", "/api/v1/sites", {"name": 5, "extra": True}),
    ("POST", "/api/v1/planner/keywords", {"keywords": "not a list"}),
]


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer atk_unknown", "Basic x"])
def test_a_stranger_with_a_bad_body_gets_401_not_a_word_about_the_body(
    server: RunningServer, run: tuple[str, str], authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as stranger:
        for method, path, body in BAD_BODIES:
            for content in (body, "{not json"):
                sent: dict[str, Any] = {
                    "params": {"site_id": run[0]},
                    "content": content if isinstance(content, str) else json.dumps(content),
                    "headers": {"content-type": "application/json"},
                }
                answer = stranger.request(method, path, **sent)
                assert answer.status_code == 401, (path, answer.text)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert answer.json()["error"] == {
                    "code": "not_authenticated",
                    "message": "a valid bearer token is required",
                    "details": {},
                }
