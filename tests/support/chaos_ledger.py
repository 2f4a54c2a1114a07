"""A run driven through the HTTP API, watched while faults happen, and its books checked
afterwards: what it made, what it charged, its views and its history."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from automation.demo import demo_keywords
from tests.conftest import Api
from tests.support.chaos import AUTOMATION, Roles, Stack

T = TypeVar("T")
AUTOMATION_API = "/api/v1/automation"
CREDITS = 1_000_000
LIVENESS = 120.0  # seconds: generous; the time actually taken is measured and reported
# Two dozen keywords, small batches and a pause between stages: the run lasts several
# seconds, so a fault lands in its middle with a batch in flight and stages still to come.
KEYWORDS = demo_keywords()[:24]
CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 1,
    "stage_1_batch_size": 4,
    "stage_2_batch_size": 2,
    "stage_3_batch_size": 2,
    "stage_4_batch_size": 2,
    "stage_5_batch_size": 2,
    "stage_6_batch_size": 2,
}
LISTINGS = {
    "/api/v1/planner/keywords": ("keyword", "status"),
    "/api/v1/planner/clusters": ("name", "status"),
    "/api/v1/planner/ideas": ("title", "status"),
    "/api/v1/writer/tasks": ("title", "status"),
    "/api/v1/writer/content": ("title", "status", "word_count"),
    "/api/v1/writer/images": ("status",),
}


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def eventually(probe: Callable[[], T | None], what: str, timeout: float = LIVENESS) -> T:
    """The first non-None answer of ``probe``; a failing call (a role still restarting, a
    503 while a backing service is away) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except (httpx.HTTPError, AssertionError, KeyError, IndexError):
            found = None
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.05)


def open_account(stack: Stack, roles: Roles) -> Api:
    opened = json.loads(stack.admin("admin", "create-account", "Acme", "--credits", str(CREDITS)))
    return Api(roles.http.url, opened["token"], opened["account_id"])


def prepared_site(api: Api, keywords: list[str], config: dict[str, Any], name: str) -> str:
    site = api.site(name)
    ok(api.keywords(site, keywords), 201)
    ok(api.put(f"{AUTOMATION_API}/update_config", config, site_id=site))
    return site


def state(api: Api, run_id: str) -> dict[str, Any]:
    """The run folded from its stored events (not from a read model)."""
    body: dict[str, Any] = ok(api.get(f"{AUTOMATION_API}/runs/{run_id}/state"))
    run: dict[str, Any] = body["run"]
    return run | {"version": body["version"]}


def reached(api: Api, run_id: str, stage: int) -> dict[str, Any]:
    """Wait until the run works on ``stage`` (or later): the moment to strike."""

    def probe() -> dict[str, Any] | None:
        run = state(api, run_id)
        assert run["status"] in ("running", "paused"), f"the run ended early: {run['status']}"
        return run if run["current_stage"] >= stage else None

    return eventually(probe, f"the run reaching stage {stage}", 60)


def recovery(
    stack: Stack, api: Api, run_id: str, fault: Callable[[Callable[[], None]], None]
) -> dict[str, float]:
    """Apply ``fault``, which calls the function it is given the moment the fault ends, and
    measure the seconds from then to the run's next stored event and to its completion."""
    end: list[tuple[float, int]] = []
    fault(lambda: end.append((time.monotonic(), stack.run_version(run_id))))
    assert end, "the fault never said when it ended"
    ended, version = end[0]
    times: dict[str, float] = {}

    def probe() -> dict[str, Any] | None:
        # Progress is read from the store itself: the API may be what is still restarting.
        if "progress" not in times and stack.run_version(run_id) > version:
            times["progress"] = time.monotonic() - ended
        run = state(api, run_id)
        assert run["status"] in ("running", "completed"), run["status"]
        return run if run["status"] == "completed" else None

    eventually(probe, "the run completing after the fault")
    times["completed"] = time.monotonic() - ended
    times.setdefault("progress", times["completed"])
    return times


def shown_completed(api: Api, site: str, run_id: str) -> None:
    """Wait until the read models show the run completed, so listings are final."""

    def probe() -> bool | None:
        latest = ok(api.get(f"{AUTOMATION_API}/history", site_id=site))["runs"][0]
        return (latest["run_id"] == run_id and latest["status"] == "completed") or None

    eventually(probe, "the views showing the run completed")


def events(api: Api, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = ok(
            api.get(f"{AUTOMATION_API}/runs/{run_id}/events", after_version=len(found), limit=1000)
        )
        if not page["events"]:
            return found
        found += page["events"]


def made(api: Api, site: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every listing of the site, as a multiset of the fields that do not name ids."""
    listings: dict[str, Counter[tuple[Any, ...]]] = {}
    for path, fields in LISTINGS.items():
        body = ok(api.get(path, site_id=site, limit=1000))
        assert body["count"] == len(body["results"])
        listings[path] = Counter(tuple(item[f] for f in fields) for item in body["results"])
    return listings


def check_books(
    api: Api, site: str, run_id: str, expected: dict[str, Counter[tuple[Any, ...]]]
) -> dict[str, Any]:
    """The run made exactly what an undisturbed run makes, recorded each batch once, and
    charged exactly what it used: balance delta = Σ CreditsConsumed = total_credits_used."""
    run = state(api, run_id)
    assert run["status"] == "completed", run
    shown_completed(api, site, run_id)  # the projector may have been the role killed
    assert made(api, site) == expected, "items lost or made twice"
    history = events(api, run_id)
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    recorded = [
        (e["data"]["stage"], e["data"]["batch"]) for e in history if e["type"] == "BatchCompleted"
    ]
    assert len(recorded) == len(set(recorded)), "a batch recorded twice"
    dispatched = {
        (e["data"]["stage"], e["data"]["batch"]) for e in history if e["type"] == "BatchDispatched"
    }
    assert set(recorded) == dispatched
    consumed = sum(e["data"]["amount"] for e in history if e["type"] == "CreditsConsumed")
    balance = ok(api.get(f"{AUTOMATION_API}/estimate", site_id=site))["current_balance"]
    assert CREDITS - balance == consumed == run["total_credits_used"] > 0
    assert sum(1 for e in history if e["type"] == "RunCompleted") == 1
    return {"credits": consumed, "events": len(history)}


def verify_views(stack: Stack) -> None:
    """``automation projections verify``: every read model equals a rebuild (exit 0)."""
    done = subprocess.run(
        [*AUTOMATION, "projections", "verify"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
