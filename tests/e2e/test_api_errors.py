"""The contract's error table over HTTP: exact status, ``error.code`` and named fields.

Every refusal is also checked to have changed nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Api, RunningServer

AUTOMATION = "/api/v1/automation"
KEYWORDS = "/api/v1/planner/keywords"

# (method, path, body) of every endpoint that takes ``site_id``.
SITE_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", f"{AUTOMATION}/config", None),
    ("PUT", f"{AUTOMATION}/update_config", {"is_enabled": False}),
    ("POST", f"{AUTOMATION}/run_now", None),
    ("GET", f"{AUTOMATION}/current_run", None),
    ("GET", f"{AUTOMATION}/history", None),
    ("GET", f"{AUTOMATION}/estimate", None),
    ("GET", f"{AUTOMATION}/pipeline_overview", None),
    ("GET", f"{AUTOMATION}/current_processing", None),
    ("GET", f"{AUTOMATION}/schedule_preview", None),
    ("POST", KEYWORDS, {"keywords": ["trail shoes"]}),
    ("GET", KEYWORDS, None),
]

# (method, path) of every endpoint that takes ``run_id`` alone.
RUN_ENDPOINTS: list[tuple[str, str]] = [
    ("GET", f"{AUTOMATION}/logs"),
    ("POST", f"{AUTOMATION}/pause"),
    ("POST", f"{AUTOMATION}/resume"),
    ("POST", f"{AUTOMATION}/cancel"),
]


def call(api: Api, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
    if body is None:
        return api.http.request(method, path, params=params)
    return api.http.request(method, path, params=params, json=body)


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is the contract's JSON error with this status and code; returns ``error``."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, answer.text
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error.get("details", {}), dict)
    return error


def assert_invalid(answer: httpx.Response, *fields: str) -> dict[str, Any]:
    """400 ``invalid_request`` whose ``details.fields`` names each of ``fields``."""
    error = assert_error(answer, 400, "invalid_request")
    named = error["details"]["fields"]
    assert isinstance(named, dict), error
    for field in fields:
        assert any(name == field or name.startswith(field + ".") for name in named), (
            field,
            named,
        )
    return error


def assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected


class Failures:
    """Collects failed checks of a table of cases, so one run reports every failing case."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, case: object, assertion: Any, *args: Any) -> None:
        try:
            assertion(*args)
        except (AssertionError, KeyError, TypeError, ValueError) as failure:
            self.seen.append(f"{case!r}: {failure!r}")

    def assert_none(self) -> None:
        assert not self.seen, "\n".join(self.seen)


def config(api: Api, site: str) -> dict[str, Any]:
    answer = api.get(f"{AUTOMATION}/config", site_id=site)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def keyword_count(api: Api, site: str) -> int:
    answer = api.get(KEYWORDS, site_id=site)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["count"])


def history(api: Api, site: str) -> list[dict[str, Any]]:
    answer = api.get(f"{AUTOMATION}/history", site_id=site)
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, Any]] = answer.json()["runs"]
    return runs


# --- missing_parameter ---------------------------------------------------------------------


def test_every_site_endpoint_without_site_id_is_missing_parameter(api: Api) -> None:
    site = api.site()
    for method, path, body in SITE_ENDPOINTS:
        answer = call(api, method, path, body)
        assert_error(answer, 400, "missing_parameter")
        assert "site_id" in answer.text, (path, answer.text)
        empty = call(api, method, path, body, site_id="")
        assert_error(empty, 400, "missing_parameter")
    # Nothing was written anywhere by the refused requests.
    assert history(api, site) == []
    assert keyword_count(api, site) == 0


def test_every_run_endpoint_without_run_id_is_missing_parameter(api: Api) -> None:
    site = api.site()
    started = api.run_now(site)
    assert started.status_code == 202, started.text
    for method, path in RUN_ENDPOINTS:
        answer = call(api, method, path)
        assert_error(answer, 400, "missing_parameter")
        assert "run_id" in answer.text, (path, answer.text)
    run = api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
    assert run["status"] == "running"


# --- invalid_request: ids ------------------------------------------------------------------


BAD_IDS = ["not-a-uuid", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "ü" * 36, "a" * 5_000]


def test_a_malformed_site_id_is_invalid_request_naming_site_id(api: Api) -> None:
    site = api.site()
    failures = Failures()
    for bad_id in BAD_IDS:
        for method, path, body in SITE_ENDPOINTS:
            answer = call(api, method, path, body, site_id=bad_id)
            failures.check((path, bad_id[:40]), assert_invalid, answer, "site_id")
    failures.assert_none()
    assert history(api, site) == []


def test_a_malformed_run_id_is_invalid_request_naming_run_id(api: Api) -> None:
    failures = Failures()
    for bad_id in BAD_IDS:
        for method, path in RUN_ENDPOINTS:
            answer = call(api, method, path, run_id=bad_id)
            failures.check((path, bad_id[:40]), assert_invalid, answer, "run_id")
    failures.assert_none()


# --- invalid_request: config bodies ---------------------------------------------------------

BAD_CONFIG_CHANGES: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"stage_1_batch_size": "5"}, ("stage_1_batch_size",)),
    ({"stage_2_batch_size": 1.5}, ("stage_2_batch_size",)),
    ({"is_enabled": "yes"}, ("is_enabled",)),
    ({"is_enabled": 1}, ("is_enabled",)),
    ({"is_enabled": None}, ("is_enabled",)),
    ({"no_such_field": 1}, ("no_such_field",)),
    ({"stage_3_batch_size": 0}, ("stage_3_batch_size",)),
    ({"stage_6_batch_size": 1001}, ("stage_6_batch_size",)),
    ({"stage_4_batch_size": -5}, ("stage_4_batch_size",)),
    ({"within_stage_delay": -1}, ("within_stage_delay",)),
    ({"between_stage_delay": 86_401}, ("between_stage_delay",)),
    ({"frequency": "hourly"}, ("frequency",)),
    ({"frequency": "Daily"}, ("frequency",)),
    ({"frequency": None}, ("frequency",)),
    ({"frequency": 1}, ("frequency",)),
    ({"scheduled_time": "24:00"}, ("scheduled_time",)),
    ({"scheduled_time": "7:00"}, ("scheduled_time",)),
    ({"scheduled_time": "12:60"}, ("scheduled_time",)),
    ({"scheduled_time": "noon"}, ("scheduled_time",)),
    ({"scheduled_time": 700}, ("scheduled_time",)),
    ({"scheduled_weekday": 7}, ("scheduled_weekday",)),
    ({"scheduled_weekday": -1}, ("scheduled_weekday",)),
    ({"scheduled_day_of_month": 0}, ("scheduled_day_of_month",)),
    ({"scheduled_day_of_month": 32}, ("scheduled_day_of_month",)),
    ({"timezone": "Mars/Olympus_Mons"}, ("timezone",)),
    ({"timezone": "europe/berlin"}, ("timezone",)),
    ({"timezone": ""}, ("timezone",)),
    ({"timezone": None}, ("timezone",)),
    # Several bad fields of one kind are all named.
    (
        {"stage_1_batch_size": 0, "within_stage_delay": -1},
        ("stage_1_batch_size", "within_stage_delay"),
    ),
    ({"frequency": "hourly", "scheduled_time": "25:00"}, ("frequency", "scheduled_time")),
    # A bad field refuses the whole update, good fields included.
    ({"is_enabled": True, "stage_1_batch_size": 5000}, ("stage_1_batch_size",)),
    ({"scheduled_time": "03:00", "timezone": "Nowhere/City"}, ("timezone",)),
]


def test_a_bad_config_update_is_refused_and_changes_nothing(api: Api) -> None:
    site = api.site(timezone="Europe/Berlin")
    before = config(api, site)
    failures = Failures()
    for changes, fields in BAD_CONFIG_CHANGES:
        answer = api.put(f"{AUTOMATION}/update_config", changes, site_id=site)
        failures.check(changes, assert_invalid, answer, *fields)
        failures.check(changes, assert_equal, config(api, site), before)
    failures.assert_none()
    assert config(api, site) == before


NOT_AN_OBJECT = [
    b"{not json",
    b'{"is_enabled": tru}',
    b"",
    b"[1, 2]",
    b'"is_enabled"',
    b"5",
    b"null",
]


def test_a_config_body_that_is_not_a_json_object_is_invalid_request(api: Api) -> None:
    site = api.site()
    before = config(api, site)
    failures = Failures()
    for raw in NOT_AN_OBJECT:
        answer = api.http.put(
            f"{AUTOMATION}/update_config",
            params={"site_id": site},
            content=raw,
            headers={"content-type": "application/json"},
        )
        failures.check(raw, assert_invalid, answer, "body")
    failures.assert_none()
    assert config(api, site) == before


# --- invalid_request: site bodies -----------------------------------------------------------

BAD_SITES: list[tuple[Any, str]] = [
    ({"name": "Shop", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"name": "Shop", "timezone": "+02:00"}, "timezone"),
    ({"name": "Shop", "timezone": 2}, "timezone"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Sh\x00op"}, "name"),
    ({"name": "Shop\x1b[31m"}, "name"),
    ({"name": 5}, "name"),
    ({"timezone": "UTC"}, "name"),
    ({"name": "Shop", "owner": "someone"}, "owner"),
    ([{"name": "Shop"}], "body"),
    ("Shop", "body"),
]


def test_a_bad_site_is_refused_and_not_created(api: Api) -> None:
    api.site("Existing")
    failures = Failures()
    for body, field in BAD_SITES:
        failures.check(body, assert_invalid, api.post("/api/v1/sites", body), field)
    failures.assert_none()
    names = [s["name"] for s in api.get("/api/v1/sites").json()["results"]]
    assert names == ["Existing"]


def test_a_malformed_site_body_is_invalid_request(api: Api) -> None:
    answer = api.http.post(
        "/api/v1/sites", content=b'{"name": "Shop",', headers={"content-type": "application/json"}
    )
    assert_invalid(answer, "body")
    assert api.get("/api/v1/sites").json()["results"] == []


# --- invalid_request: keyword imports ----------------------------------------------------------

BAD_IMPORTS: list[tuple[Any, str]] = [
    ({"keywords": []}, "keywords"),
    ({"keywords": [f"keyword {i}" for i in range(10_001)]}, "keywords"),
    ({"keywords": ["good one", "   "]}, "keywords"),
    ({"keywords": ["good one", ""]}, "keywords"),
    ({"keywords": ["good one", "x" * 201]}, "keywords"),
    ({"keywords": ["good one", {"keyword": " \t "}]}, "keywords"),
    ({"keywords": ["good one", {"keyword": "y" * 201, "volume": 3}]}, "keywords"),
    # PostgreSQL cannot store a NUL in text: refused on both backends alike.
    ({"keywords": ["good one", "trail\x00shoes"]}, "keywords"),
    ({"keywords": ["good one", {"keyword": "bell\x07"}]}, "keywords"),
    ({"keywords": [{"keyword": "good one", "volume": -1}]}, "keywords"),
    ({"keywords": [{"keyword": "good one", "volume": "12"}]}, "keywords"),
    ({"keywords": [{"keyword": "good one", "extra": 1}]}, "keywords"),
    ({"keywords": [{"volume": 12}]}, "keywords"),
    ({"keywords": ["good one", 5]}, "keywords"),
    ({"keywords": "good one"}, "keywords"),
    ({"keywords": None}, "keywords"),
    ({}, "keywords"),
    ({"keywords": ["good one"], "site": "x"}, "site"),
    (["good one"], "body"),
]


def test_a_bad_keyword_import_is_refused_whole(api: Api) -> None:
    site = api.site()
    failures = Failures()
    for body, field in BAD_IMPORTS:
        case = str(body)[:80]
        failures.check(case, assert_invalid, api.post(KEYWORDS, body, site_id=site), field)
    failures.assert_none()
    assert keyword_count(api, site) == 0


def test_a_malformed_keyword_body_is_invalid_request(api: Api) -> None:
    site = api.site()
    answer = api.http.post(
        KEYWORDS,
        params={"site_id": site},
        content=b'{"keywords": ["a"',
        headers={"content-type": "application/json"},
    )
    assert_invalid(answer, "body")
    assert keyword_count(api, site) == 0


def test_keywords_at_the_length_limits_are_accepted_after_trimming(api: Api) -> None:
    site = api.site()
    longest = "k" * 200
    answer = api.keywords(site, ["  " + longest + "  ", "x", {"keyword": " " + "v" * 200}])
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"created": 3, "duplicates": 0}


# --- invalid_request: query ranges ------------------------------------------------------------

BAD_QUERIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("GET", KEYWORDS, {"limit": 0}, "limit"),
    ("GET", KEYWORDS, {"limit": 1001}, "limit"),
    ("GET", KEYWORDS, {"limit": -1}, "limit"),
    ("GET", KEYWORDS, {"limit": "ten"}, "limit"),
    ("GET", KEYWORDS, {"limit": "2.5"}, "limit"),
    ("GET", KEYWORDS, {"offset": -1}, "offset"),
    ("GET", KEYWORDS, {"offset": "first"}, "offset"),
    ("GET", f"{AUTOMATION}/schedule_preview", {"count": 0}, "count"),
    ("GET", f"{AUTOMATION}/schedule_preview", {"count": 51}, "count"),
    ("GET", f"{AUTOMATION}/schedule_preview", {"count": "five"}, "count"),
]


def test_an_out_of_range_query_value_is_invalid_request(api: Api) -> None:
    site = api.site()
    run_id = api.run_now(site).json()["run_id"]
    failures = Failures()
    for method, path, params, field in BAD_QUERIES:
        answer = call(api, method, path, site_id=site, **params)
        failures.check((path, params), assert_invalid, answer, field)
    for lines in (0, -3, 1001, "many", "1e3"):
        answer = api.get(f"{AUTOMATION}/logs", run_id=run_id, lines=lines)
        failures.check(("logs", lines), assert_invalid, answer, "lines")
    failures.assert_none()


# --- not_authenticated -------------------------------------------------------------------------


BAD_AUTHORIZATIONS: list[str | None] = [
    None,
    "",
    "Bearer",
    "Basic dXNlcjpwYXNzd29yZA==",
    "Token {token}",
    "Bearer not-a-token-anyone-has",
    "Bearer {token}x",
    "Bearer " + "t" * 500,
    "{token}",
]


def test_requests_without_a_valid_bearer_token_are_401_and_change_nothing(
    server: RunningServer, new_account: Any
) -> None:
    owner: Api = new_account()
    site = owner.site("Owned")
    run_id = owner.run_now(site).json()["run_id"]
    token = owner.http.headers["authorization"].split(" ", 1)[1]
    requests: list[tuple[str, str, dict[str, Any], Any]] = [
        ("GET", "/api/v1/sites", {}, None),
        ("POST", "/api/v1/sites", {}, {"name": "Intruder"}),
        ("GET", f"{AUTOMATION}/config", {"site_id": site}, None),
        ("PUT", f"{AUTOMATION}/update_config", {"site_id": site}, {"is_enabled": True}),
        ("POST", f"{AUTOMATION}/run_now", {"site_id": site}, None),
        ("GET", f"{AUTOMATION}/history", {"site_id": site}, None),
        ("GET", f"{AUTOMATION}/estimate", {"site_id": site}, None),
        ("POST", f"{AUTOMATION}/pause", {"run_id": run_id}, None),
        ("POST", f"{AUTOMATION}/cancel", {"run_id": run_id}, None),
        ("GET", f"{AUTOMATION}/logs", {"run_id": run_id}, None),
        ("POST", KEYWORDS, {"site_id": site}, {"keywords": ["stolen"]}),
        ("GET", KEYWORDS, {"site_id": site}, None),
        # Even a missing or malformed parameter is answered 401 to a stranger.
        ("GET", f"{AUTOMATION}/config", {}, None),
        ("GET", f"{AUTOMATION}/config", {"site_id": "nope"}, None),
        ("GET", f"{AUTOMATION}/config", {"site_id": str(uuid.uuid4())}, None),
    ]
    failures = Failures()
    for authorization in BAD_AUTHORIZATIONS:
        headers = {}
        if authorization is not None:
            headers["authorization"] = authorization.format(token=token)
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as stranger:
            for method, path, params, body in requests:
                answer = stranger.request(method, path, params=params, json=body)
                case = (str(authorization)[:30], method, path, params)
                failures.check(case, assert_error, answer, 401, "not_authenticated")
    failures.assert_none()
    assert [s["name"] for s in owner.get("/api/v1/sites").json()["results"]] == ["Owned"]
    assert config(owner, site)["is_enabled"] is False
    runs = history(owner, site)
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "running")]
    assert keyword_count(owner, site) == 0


# --- unknown ids ---------------------------------------------------------------------------------


def test_an_unknown_site_is_site_not_found_on_every_site_endpoint(api: Api) -> None:
    unknown = str(uuid.uuid4())
    for method, path, body in SITE_ENDPOINTS:
        assert_error(call(api, method, path, body, site_id=unknown), 404, "site_not_found")


def test_an_unknown_run_is_run_not_found_on_every_run_endpoint(api: Api) -> None:
    site = api.site()
    for method, path in RUN_ENDPOINTS:
        assert_error(call(api, method, path, run_id=str(uuid.uuid4())), 404, "run_not_found")
        # An id of something that is not a run is no run either.
        assert_error(call(api, method, path, run_id=site), 404, "run_not_found")
