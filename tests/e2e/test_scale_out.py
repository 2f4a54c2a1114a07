"""Two of every role on one PostgreSQL and RabbitMQ, each a separate OS process: two
``automation serve``, or two each of ``api``, ``projector``, ``orchestrator``, ``worker``,
``relay`` and ``scheduler``.

Runs are driven through both HTTP processes at once. Every command must be answered (no
503 ``not_ready``: a command's answer waits until the read models show it, whichever
process's projector applied it), a command answered by one API must be visible through the
other at once, every run must end completed with each batch recorded once and credits
exact, every view must equal a rebuild, and the events exchange must hold every stored
event, in per-run order. In the production layout the leading relay is killed with SIGKILL
mid-run: the standby takes over and nothing is skipped.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from automation.demo import demo_keywords
from tests.conftest import POSTGRES_URL, Api, delete_from_rabbit
from tests.support.chaos import Role, Stack
from tests.support.chaos_exchange import ExchangeQueue, check_published
from tests.support.chaos_ledger import (
    AUTOMATION_API,
    CREDITS,
    events,
    eventually,
    made,
    ok,
    shown_completed,
    state,
    verify_views,
)
from tests.support.leaders import leader_among

# Small runs with a pause between stages: each lasts a few seconds, long enough for the
# relay's leader to die in the middle of one.
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
PRODUCTION_ROLES = ["api", "projector", "orchestrator", "worker", "relay", "scheduler"]


class TimedApi(Api):
    """An API client that keeps every command's status and time to answer."""

    def __init__(self, url: str, token: str, answers: list[tuple[str, int, float]]) -> None:
        super().__init__(url, token)
        self.answers = answers

    def _timed(self, method: str, path: str, json: Any, params: dict[str, Any]) -> httpx.Response:
        began = time.monotonic()
        answer = self.http.request(method, path, json=json, params=params)
        self.answers.append((f"{method} {path}", answer.status_code, time.monotonic() - began))
        return answer

    def post(self, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self._timed("POST", path, json, params)

    def put(self, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self._timed("PUT", path, json, params)


class ScaleOutStack(Stack):
    """Names of its own (schema, queues, exchange and the connections' application name),
    and pools of two connections: a process then holds about five (docs/operations.md), so
    twelve processes fit in one PostgreSQL's default 100 connections."""

    @property
    def schema(self) -> str:
        return f"scale_{self.tag}"

    @property
    def prefix(self) -> str:
        return f"scale.{self.tag}."

    @property
    def exchange(self) -> str:
        return f"scale.{self.tag}.events"

    @property
    def app_name(self) -> str:
        return f"scale_{self.tag}"

    def env(self) -> dict[str, str]:
        return super().env() | {"AUTOMATION_DB_POOL_SIZE": "2"}


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, amqp_url: str) -> Iterator[Stack]:
    """A deployment of the test's own: schema, queue prefix and exchange."""
    made_stack = ScaleOutStack(tmp_path / "var", production=True)
    yield made_stack
    made_stack.remove()


@pytest.fixture
def exchange(stack: Stack) -> Iterator[ExchangeQueue]:
    """Another service's queue on the events exchange, bound before any process starts,
    so it keeps every event published; deleted afterwards."""
    queue = ExchangeQueue(stack)
    queue.bind()
    yield queue
    delete_from_rabbit([queue.name], [])


@pytest.fixture
def start_roles(stack: Stack) -> Iterator[Callable[[list[str]], list[Role]]]:
    """Start two copies of each named role; every one still running is stopped afterwards."""
    started: list[Role] = []

    def start(names: list[str]) -> list[Role]:
        roles = [Role(stack, name, f"{name}{i}") for name in names for i in range(2)]
        started.extend(roles)
        # The HTTP processes first, as they are awaited (until /healthz answers); then the
        # rest at once, which nothing waits for: the runs wait for them.
        for group in ([r for r in roles if r.port], [r for r in roles if not r.port]):
            with ThreadPoolExecutor(max(1, len(group))) as pool:
                list(pool.map(Role.start, group))
        return roles

    yield start
    for role in started:
        role.stop()


def prepare(api: TimedApi, name: str) -> str:
    site = api.site(name)
    ok(api.keywords(site, KEYWORDS), 201)
    ok(api.put(f"{AUTOMATION_API}/update_config", CONFIG, site_id=site))
    return site


def start_runs(apis: list[TimedApi]) -> list[tuple[TimedApi, str, str]]:
    """A site per API, prepared and started through it. Each command's effect must be
    visible at once through the other API too: commands wait for every read model."""
    runs = []
    for i, api in enumerate(apis):
        other = apis[1 - i]
        site = prepare(api, f"Site {i}")
        assert any(s["site_id"] == site for s in ok(other.get("/api/v1/sites"))["results"])
        run_id = ok(api.run_now(site), 202)["run_id"]
        shown = ok(other.get(f"{AUTOMATION_API}/current_run", site_id=site))["run"]
        assert shown is not None, "the other API does not show the run"
        assert shown["run_id"] == run_id
        runs.append((api, site, run_id))
    return runs


def check_runs(runs: list[tuple[TimedApi, str, str]]) -> int:
    """Each run completed once, each batch recorded once and every dispatched batch
    recorded; both sites made the same (same keywords and config); the account paid
    exactly Σ CreditsConsumed = Σ total_credits_used. Returns the credits used."""
    consumed = used = 0
    for api, site, run_id in runs:
        shown_completed(api, site, run_id)
        assert state(api, run_id)["status"] == "completed"
        history = events(api, run_id)
        assert [e["version"] for e in history] == list(range(1, len(history) + 1))
        recorded = [
            (e["data"]["stage"], e["data"]["batch"])
            for e in history
            if e["type"] == "BatchCompleted"
        ]
        assert len(recorded) == len(set(recorded)), "a batch recorded twice"
        dispatched = {
            (e["data"]["stage"], e["data"]["batch"])
            for e in history
            if e["type"] == "BatchDispatched"
        }
        assert set(recorded) == dispatched, "a dispatched batch never recorded"
        assert sum(1 for e in history if e["type"] == "RunCompleted") == 1
        consumed += sum(e["data"]["amount"] for e in history if e["type"] == "CreditsConsumed")
        used += state(api, run_id)["total_credits_used"]
    (api0, site0, _), (api1, site1, _) = runs
    assert made(api0, site0) == made(api1, site1), "items lost or made twice"
    keywords = ok(api0.get("/api/v1/planner/keywords", site_id=site0, limit=1000))["results"]
    assert len(keywords) == len(KEYWORDS)
    assert all(k["status"] != "new" for k in keywords), "keywords left unprocessed"
    balance = ok(api0.get(f"{AUTOMATION_API}/estimate", site_id=site0))["current_balance"]
    assert CREDITS - balance == consumed == used > 0
    return used


def check_answers(answers: list[tuple[str, int, float]]) -> None:
    failed = [a for a in answers if a[1] >= 300]
    assert not failed, f"commands not answered: {failed}"
    slowest = max(answers, key=lambda a: a[2])
    print(f"{len(answers)} commands, the slowest {slowest[2] * 1000:.0f} ms ({slowest[0]})")


def at_rest(roles: list[Role]) -> None:
    """Stop every process (gracefully): the views are compared with a rebuild at rest, and
    the connections the processes held are free for it."""
    for role in roles:
        role.stop()


def clients(stack: Stack, https: list[Role]) -> tuple[list[TimedApi], list[tuple[str, int, float]]]:
    """One account, and a client of it for each HTTP process, sharing one list of answers."""
    answers: list[tuple[str, int, float]] = []
    token = json.loads(stack.admin("admin", "create-account", "Acme", "--credits", str(CREDITS)))
    return [TimedApi(role.url, token["token"], answers) for role in https], answers


def test_two_serve_processes_on_one_database(
    stack: Stack, exchange: ExchangeQueue, start_roles: Callable[[list[str]], list[Role]]
) -> None:
    servers = start_roles(["serve"])
    apis, answers = clients(stack, servers)

    runs = start_runs(apis)
    check_runs(runs)
    check_answers(answers)
    published = check_published(stack, exchange)
    print(published)
    # Both processes run a relay, and only the leader publishes: each event exactly once.
    assert published["duplicates"] == 0
    at_rest(servers)
    verify_views(stack)


def test_two_of_every_production_role_and_the_relay_leader_killed(
    stack: Stack, exchange: ExchangeQueue, start_roles: Callable[[list[str]], list[Role]]
) -> None:
    roles = start_roles(PRODUCTION_ROLES)
    by_label = {role.label: role for role in roles}
    apis, answers = clients(stack, [by_label["api0"], by_label["api1"]])
    relays = [by_label["relay0"], by_label["relay1"]]

    def leading_relay() -> Role | None:
        pids = [r.process.pid for r in relays if r.process is not None and r.alive()]
        pid = leader_among(POSTGRES_URL, stack.schema, "relay", pids)
        return next((r for r in relays if r.process is not None and r.process.pid == pid), None)

    runs = start_runs(apis)
    # In the middle of the runs, with events still to come: the leader dies at once.
    api, _, run_id = runs[0]
    eventually(lambda: state(api, run_id)["current_stage"] >= 2 or None, "stage 2 reached")
    leader = eventually(leading_relay, "a relay leading")
    assert state(api, run_id)["status"] == "running"
    leader.signal(signal.SIGKILL)
    standby = eventually(leading_relay, "the standby relay taking over")
    assert standby is not leader

    check_runs(runs)
    check_answers(answers)
    # The batch the dead leader was publishing may go out again (same ids): at least once.
    print(check_published(stack, exchange))
    at_rest(roles)
    verify_views(stack)
