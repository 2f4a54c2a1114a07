"""Starting, watching and steering runs: reads after writes, credits, logs and refusals."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any
from uuid import UUID

import httpx

from automation.adapters.event_log import ApplicationEventSource
from automation.bootstrap import Services
from projections.runtime import Projector
from tests.conftest import Api, RunningServer

AUTOMATION = "/api/v1/automation"
STAGE_KEYS = {"stage", "name", "status", "processed", "created", "credits_used"}
RUN_KEYS = {
    "run_id",
    "status",
    "trigger_type",
    "current_stage",
    "started_at",
    "paused_at",
    "resumed_at",
    "total_credits_used",
    "stages",
}
HISTORY_KEYS = {
    "run_id",
    "status",
    "trigger_type",
    "started_at",
    "completed_at",
    "total_credits_used",
}


def utc(value: str) -> datetime:
    """An ISO 8601 UTC time as the contract writes it."""
    assert isinstance(value, str)
    assert value.endswith("Z") or value.endswith("+00:00"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return parsed


def error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()["error"]
    assert body["code"] == code, answer.text
    return body


def estimate(api: Api, site: str) -> dict[str, Any]:
    answer = api.get(f"{AUTOMATION}/estimate", site_id=site)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def current_run(api: Api, site: str) -> dict[str, Any] | None:
    answer = api.get(f"{AUTOMATION}/current_run", site_id=site)
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] | None = answer.json()["run"]
    return run


def history(api: Api, site: str) -> list[dict[str, Any]]:
    answer = api.get(f"{AUTOMATION}/history", site_id=site)
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, Any]] = answer.json()["runs"]
    return runs


def control(api: Api, action: str, run_id: str) -> httpx.Response:
    return api.post(f"{AUTOMATION}/{action}", run_id=run_id)


def probe_required(new_account: Any, keywords: list[str]) -> int:
    """The required credits for a fresh site holding ``keywords``, asked of another account."""
    probe: Api = new_account(name="Probe")
    site = probe.site()
    assert probe.keywords(site, keywords).status_code == 201
    return int(estimate(probe, site)["required_credits"])


# --- reads after writes -------------------------------------------------------------------


def test_commands_wait_for_read_models_kept_by_another_process(services: Services) -> None:
    """With no projector in the API's process, a command watches the views' positions
    until they show it, so the next read still sees the write."""
    elsewhere = Projector(
        services.views, ApplicationEventSource(services.app), services.projector.projections
    )
    elsewhere.start(poll_interval=0.01)
    try:
        with RunningServer(services, projector=False) as server:
            assert not services.projector.is_running()
            account_id, token = services.app.open_account("Elsewhere", 1_000_000)
            api = Api(server.url, token, str(account_id))
            site = api.site()
            assert api.keywords(site, ["trail shoes"]).status_code == 201
            started = api.run_now(site)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            run = current_run(api, site)
            assert run is not None
            assert (run["run_id"], run["status"]) == (run_id, "running")
            assert control(api, "pause", run_id).status_code == 200
            assert history(api, site)[0]["status"] == "paused"
    finally:
        elsewhere.stop()


def test_every_command_is_visible_to_the_next_read(api: Api) -> None:
    site = api.site()
    assert api.keywords(site, ["trail shoes", "road shoes"]).status_code == 201
    initial = estimate(api, site)["current_balance"]
    required = estimate(api, site)["required_credits"]
    assert current_run(api, site) is None
    assert history(api, site) == []

    started = api.run_now(site)
    assert started.status_code == 202, started.text
    assert set(started.json()) >= {"run_id", "status"}
    assert started.json()["status"] == "running"
    run_id = started.json()["run_id"]

    runs = history(api, site)
    assert [r["run_id"] for r in runs] == [run_id]
    assert set(runs[0]) >= HISTORY_KEYS
    assert runs[0]["status"] == "running"
    assert runs[0]["completed_at"] is None
    run = current_run(api, site)
    assert run is not None
    assert set(run) >= RUN_KEYS
    assert (run["run_id"], run["status"]) == (run_id, "running")
    assert isinstance(run["trigger_type"], str)
    assert run["paused_at"] is None
    assert run["resumed_at"] is None
    started_at = utc(run["started_at"])
    assert abs((datetime.now(UTC) - started_at).total_seconds()) < 120
    assert [s["stage"] for s in run["stages"]] == [1, 2, 3, 4, 5, 6, 7]
    assert all(set(s) >= STAGE_KEYS for s in run["stages"])
    assert estimate(api, site)["current_balance"] == initial - required

    paused = control(api, "pause", run_id)
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"run_id": run_id, "status": "paused"}
    run = current_run(api, site)
    assert run is not None
    assert (run["run_id"], run["status"]) == (run_id, "paused")
    assert utc(run["paused_at"]) >= started_at
    assert history(api, site)[0]["status"] == "paused"

    resumed = control(api, "resume", run_id)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json() == {"run_id": run_id, "status": "running"}
    run = current_run(api, site)
    assert run is not None
    assert (run["run_id"], run["status"]) == (run_id, "running")
    assert utc(run["resumed_at"]) >= utc(run["paused_at"])

    cancelled = control(api, "cancel", run_id)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"run_id": run_id, "status": "cancelled"}
    assert current_run(api, site) is None
    runs = history(api, site)
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "cancelled")]
    assert utc(runs[0]["completed_at"]) >= started_at
    # The reservation came back, and the site's lock was released.
    assert estimate(api, site)["current_balance"] == initial

    again = api.run_now(site)
    assert again.status_code == 202, again.text
    second = again.json()["run_id"]
    assert second != run_id
    runs = history(api, site)
    assert [(r["run_id"], r["status"]) for r in runs] == [
        (second, "running"),
        (run_id, "cancelled"),
    ]
    current = current_run(api, site)
    assert current is not None
    assert current["run_id"] == second
    assert estimate(api, site)["current_balance"] == initial - required


def test_a_paused_run_can_be_cancelled_and_its_credits_return(api: Api) -> None:
    site = api.site()
    assert api.keywords(site, ["some keyword"]).status_code == 201
    initial = estimate(api, site)["current_balance"]
    run_id = api.run_now(site).json()["run_id"]
    assert control(api, "pause", run_id).json()["status"] == "paused"
    assert control(api, "cancel", run_id).json() == {"run_id": run_id, "status": "cancelled"}
    assert current_run(api, site) is None
    assert history(api, site)[0]["status"] == "cancelled"
    assert estimate(api, site)["current_balance"] == initial


def test_a_second_start_while_paused_is_run_in_progress(api: Api) -> None:
    site = api.site()
    run_id = api.run_now(site).json()["run_id"]
    error(api.run_now(site), 400, "run_in_progress")
    assert control(api, "pause", run_id).status_code == 200
    error(api.run_now(site), 400, "run_in_progress")
    assert [r["run_id"] for r in history(api, site)] == [run_id]
    run = current_run(api, site)
    assert run is not None
    assert (run["run_id"], run["status"]) == (run_id, "paused")


def test_runs_of_two_sites_of_one_account_are_independent(api: Api) -> None:
    first, second = api.site("First"), api.site("Second")
    run_a = api.run_now(first).json()["run_id"]
    run_b = api.run_now(second)
    assert run_b.status_code == 202, run_b.text
    control(api, "cancel", run_a)
    assert current_run(api, first) is None
    still = current_run(api, second)
    assert still is not None
    assert still["run_id"] == run_b.json()["run_id"]
    assert [r["run_id"] for r in history(api, second)] == [run_b.json()["run_id"]]


def test_history_lists_runs_newest_first_and_at_most_twenty(api: Api) -> None:
    site = api.site()
    started: list[str] = []
    for _ in range(22):
        answer = api.run_now(site)
        assert answer.status_code == 202, answer.text
        started.append(answer.json()["run_id"])
        assert control(api, "cancel", started[-1]).status_code == 200
    runs = history(api, site)
    assert [r["run_id"] for r in runs] == list(reversed(started))[:20]
    assert all(r["status"] == "cancelled" for r in runs)


# --- invalid_state ----------------------------------------------------------------------


def test_transitions_not_allowed_in_the_runs_status_are_invalid_state(api: Api) -> None:
    site = api.site()
    run_id = api.run_now(site).json()["run_id"]

    error(control(api, "resume", run_id), 400, "invalid_state")
    run = current_run(api, site)
    assert run is not None
    assert run["status"] == "running"
    assert run["resumed_at"] is None

    assert control(api, "pause", run_id).status_code == 200
    error(control(api, "pause", run_id), 400, "invalid_state")
    run = current_run(api, site)
    assert run is not None
    assert run["status"] == "paused"

    assert control(api, "cancel", run_id).status_code == 200
    for action in ("cancel", "pause", "resume"):
        error(control(api, action, run_id), 400, "invalid_state")
    runs = history(api, site)
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "cancelled")]
    assert current_run(api, site) is None


# --- credits --------------------------------------------------------------------------------


def test_estimate_requires_the_estimate_plus_twenty_percent_rounded_up(
    new_account: Any,
) -> None:
    api: Api = new_account(credits=300)
    site = api.site()
    empty = estimate(api, site)
    assert {k: v for k, v in empty.items() if k != "basis"} == {
        "estimated_credits": 0,
        "required_credits": 0,
        "current_balance": 300,
        "sufficient": True,
    }
    assert sum(stage["credits"] for stage in empty["basis"]["stages"]) == 0
    previous = 0
    seen_fraction = False
    flags: set[bool] = set()
    for count in (1, 5, 9, 40, 400):
        existing = api.get("/api/v1/planner/keywords", site_id=site).json()["count"]
        more = [f"keyword number {i}" for i in range(existing, count)]
        assert api.keywords(site, more).status_code == 201
        body = estimate(api, site)
        estimated = body["estimated_credits"]
        assert isinstance(estimated, int)
        assert estimated > 0
        assert estimated >= previous  # more pending work never costs less
        seen_fraction = seen_fraction or estimated % 5 != 0
        assert body["required_credits"] == math.ceil(Fraction(estimated) * Fraction(6, 5))
        assert body["current_balance"] == 300
        assert body["sufficient"] is (body["required_credits"] <= 300)
        flags.add(body["sufficient"])
        previous = estimated
    assert seen_fraction, "no estimate exercised the rounding up"
    assert flags == {True, False}, "the balance never became insufficient"


def test_sufficient_is_true_exactly_from_the_required_balance(new_account: Any) -> None:
    keywords = ["waterproof boots", "hiking socks"]
    required = probe_required(new_account, keywords)
    assert required > 0
    for balance, sufficient in ((required, True), (required - 1, False), (required + 1, True)):
        api: Api = new_account(credits=balance)
        site = api.site()
        assert api.keywords(site, keywords).status_code == 201
        body = estimate(api, site)
        assert body["required_credits"] == required
        assert body["current_balance"] == balance
        assert body["sufficient"] is sufficient
        started = api.run_now(site)
        assert started.status_code == (202 if sufficient else 400), started.text


def test_insufficient_credits_names_required_and_balance_and_changes_nothing(
    server: RunningServer, new_account: Any
) -> None:
    keywords = ["merino wool socks", "gaiters", "trekking poles"]
    required = probe_required(new_account, keywords)
    for credits in (0, required - 1):
        api: Api = new_account(credits=credits)
        site = api.site()
        assert api.keywords(site, keywords).status_code == 201
        refused = api.run_now(site)
        details = error(refused, 400, "insufficient_credits")["details"]
        assert details["required"] == required
        assert details["balance"] == credits
        assert history(api, site) == []
        assert current_run(api, site) is None
        assert estimate(api, site)["current_balance"] == credits
        assert estimate(api, site)["sufficient"] is False
        config = api.get(f"{AUTOMATION}/config", site_id=site).json()
        assert config["last_run_at"] is None
    # The refused start left no lock behind: with enough credits the same site starts.
    assert api.account_id is not None
    server.services.app.grant_credits(UUID(api.account_id), 1)  # the admin grant-credits
    started = api.run_now(site)
    assert started.status_code == 202, started.text
    assert estimate(api, site)["current_balance"] == 0


# --- logs ------------------------------------------------------------------------------------


def test_logs_show_the_last_lines_of_the_run(api: Api) -> None:
    site = api.site()
    assert api.keywords(site, ["log keyword"]).status_code == 201
    run_id = api.run_now(site).json()["run_id"]
    assert control(api, "pause", run_id).status_code == 200

    answer = api.get(f"{AUTOMATION}/logs", run_id=run_id)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["run_id"] == run_id
    lines = body["lines"]
    assert len(lines) >= 2
    assert all(isinstance(line, str) and line for line in lines)
    assert "start" in lines[0].lower()
    assert "pause" in lines[-1].lower()

    last = api.get(f"{AUTOMATION}/logs", run_id=run_id, lines=1).json()
    assert last == {"run_id": run_id, "lines": [lines[-1]]}
    two = api.get(f"{AUTOMATION}/logs", run_id=run_id, lines=2).json()["lines"]
    assert two == lines[-2:]
    everything = api.get(f"{AUTOMATION}/logs", run_id=run_id, lines=1000).json()["lines"]
    assert everything == lines

    assert control(api, "resume", run_id).status_code == 200
    newest = api.get(f"{AUTOMATION}/logs", run_id=run_id, lines=1).json()["lines"]
    assert len(newest) == 1
    assert "resume" in newest[0].lower()


# --- what the pipeline will do ------------------------------------------------------------------


def test_pipeline_overview_has_seven_stages_with_pending_keywords(api: Api) -> None:
    site = api.site()
    assert api.keywords(site, ["a b", "c d", "e f"]).status_code == 201
    answer = api.get(f"{AUTOMATION}/pipeline_overview", site_id=site)
    assert answer.status_code == 200, answer.text
    stages = answer.json()["stages"]
    assert [s["stage"] for s in stages] == [1, 2, 3, 4, 5, 6, 7]
    assert all(isinstance(s["name"], str) and s["name"] for s in stages)
    assert all(isinstance(s["pending"], int) for s in stages)
    assert stages[0]["pending"] == 3


def test_current_processing_follows_the_active_run(api: Api) -> None:
    site = api.site()
    idle = api.get(f"{AUTOMATION}/current_processing", site_id=site)
    assert idle.status_code == 200, idle.text
    assert idle.json() == {"processing": None}
    assert api.keywords(site, ["processing keyword"]).status_code == 201
    run_id = api.run_now(site).json()["run_id"]
    busy = api.get(f"{AUTOMATION}/current_processing", site_id=site, run_id=run_id).json()
    processing = busy["processing"]
    assert processing["run_id"] == run_id
    assert processing["status"] == "running"
    assert processing["stage"] == 1
    assert set(processing) >= {
        "stage_name",
        "processed",
        "total",
        "percent",
        "current_items",
        "up_next",
    }
    assert 0 <= processing["percent"] <= 100
    control(api, "cancel", run_id)
    done = api.get(f"{AUTOMATION}/current_processing", site_id=site).json()
    assert done == {"processing": None}
