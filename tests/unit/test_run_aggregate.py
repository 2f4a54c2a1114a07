"""The AutomationRun aggregate, alone and as AutomationApp combines it with Site and Account."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from automation.application.app import AutomationApp
from automation.domain.account import Account
from automation.domain.errors import (
    InsufficientCreditsError,
    InvalidStateError,
    InvalidValueError,
    RunInProgressError,
    RunNotFoundError,
)
from automation.domain.estimate import PendingWork, estimate_credits, required_credits
from automation.domain.run import AutomationRun
from automation.domain.site import Site
from automation.domain.values import RunStatus, Stage, StageStatus
from tests.support.aggregates import T0, new_run, replay

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}

COMMANDS = ("pause", "resume", "cancel", "complete", "fail")
ALLOWED: dict[RunStatus, frozenset[str]] = {
    RunStatus.RUNNING: frozenset({"pause", "cancel", "complete", "fail"}),
    RunStatus.PAUSED: frozenset({"resume", "cancel", "fail"}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
OUTCOME: dict[str, RunStatus] = {
    "pause": RunStatus.PAUSED,
    "resume": RunStatus.RUNNING,
    "cancel": RunStatus.CANCELLED,
    "complete": RunStatus.COMPLETED,
    "fail": RunStatus.FAILED,
}
EVENT_NAME: dict[str, str] = {
    "pause": "RunPaused",
    "resume": "RunResumed",
    "cancel": "RunCancelled",
    "complete": "RunCompleted",
    "fail": "RunFailed",
}
# How to bring a fresh run into each status.
PATH_TO: dict[RunStatus, tuple[str, ...]] = {
    RunStatus.RUNNING: (),
    RunStatus.PAUSED: ("pause",),
    RunStatus.COMPLETED: ("complete",),
    RunStatus.FAILED: ("pause", "fail"),
    RunStatus.CANCELLED: ("pause", "resume", "cancel"),
}


def apply(run: AutomationRun, command: str, at: datetime) -> None:
    if command == "fail":
        run.fail("boom", at)
    else:
        getattr(run, command)(at)


def view(run: AutomationRun) -> dict[str, Any]:
    """Everything a reader can see of a run."""
    return {
        "id": run.id,
        "version": run.version,
        "site_id": run.site_id,
        "account_id": run.account_id,
        "trigger_type": run.trigger_type,
        "status": run.status,
        "started_at": run.started_at,
        "paused_at": run.paused_at,
        "resumed_at": run.resumed_at,
        "completed_at": run.completed_at,
        "error": run.error,
        "current_stage": run.current_stage,
        "total_credits_used": run.total_credits_used,
        "estimated_credits": run.estimated_credits,
        "reserved_credits": run.reserved_credits,
        "stages": copy.deepcopy(run.stages),
    }


def names(events: Any) -> list[str]:
    return [type(e).__name__ for e in events]


# --- status transitions ------------------------------------------------------------------


def test_a_new_run_is_running_at_stage_one_with_nothing_spent() -> None:
    run = new_run()
    assert run.status is RunStatus.RUNNING
    assert run.is_active
    assert run.version == 1
    assert run.started_at == T0
    assert run.paused_at is None
    assert run.resumed_at is None
    assert run.completed_at is None
    assert run.error is None
    assert run.current_stage == 1
    assert run.total_credits_used == 0
    assert sorted(run.stages) == [int(s) for s in Stage]
    for stage in run.stages.values():
        assert stage == {
            "status": StageStatus.PENDING.value,
            "processed": 0,
            "created": 0,
            "credits_used": 0,
        }
    assert names(run.collect_events()) == ["RunStarted"]


@pytest.mark.parametrize(
    ("path", "final"),
    [
        (("pause",), RunStatus.PAUSED),
        (("pause", "resume"), RunStatus.RUNNING),
        (("complete",), RunStatus.COMPLETED),
        (("fail",), RunStatus.FAILED),
        (("cancel",), RunStatus.CANCELLED),
        (("pause", "cancel"), RunStatus.CANCELLED),
        (("pause", "fail"), RunStatus.FAILED),
        (("pause", "resume", "complete"), RunStatus.COMPLETED),
        (("pause", "resume", "pause", "resume", "pause", "cancel"), RunStatus.CANCELLED),
    ],
)
def test_legal_transitions(path: tuple[str, ...], final: RunStatus) -> None:
    run = new_run()
    run.collect_events()
    for step, command in enumerate(path, start=1):
        apply(run, command, T0 + timedelta(minutes=step))
    assert run.status is final
    assert run.is_active == (final in (RunStatus.RUNNING, RunStatus.PAUSED))
    assert run.version == 1 + len(path)
    assert names(run.collect_events()) == [EVENT_NAME[c] for c in path]


def test_timestamps_and_error_are_recorded() -> None:
    run = new_run()
    run.pause(T0 + timedelta(minutes=1))
    assert run.paused_at == T0 + timedelta(minutes=1)
    run.resume(T0 + timedelta(minutes=2))
    assert run.resumed_at == T0 + timedelta(minutes=2)
    assert run.paused_at == T0 + timedelta(minutes=1)
    assert run.completed_at is None
    run.fail("stage 4 timed out", T0 + timedelta(minutes=3))
    assert run.completed_at == T0 + timedelta(minutes=3)
    assert run.error == "stage 4 timed out"
    assert run.started_at == T0


@pytest.mark.parametrize("command", ["cancel", "complete"])
def test_ending_without_failure_leaves_no_error(command: str) -> None:
    run = new_run()
    apply(run, command, T0 + timedelta(hours=1))
    assert run.completed_at == T0 + timedelta(hours=1)
    assert run.error is None


ILLEGAL = [
    (status, command)
    for status in RunStatus
    for command in COMMANDS
    if command not in ALLOWED[status]
]


@pytest.mark.parametrize(("status", "command"), ILLEGAL)
def test_illegal_transitions_raise_and_append_nothing(status: RunStatus, command: str) -> None:
    run = new_run()
    for step, done in enumerate(PATH_TO[status], start=1):
        apply(run, done, T0 + timedelta(minutes=step))
    assert run.status is status
    run.collect_events()
    before = view(run)
    with pytest.raises(InvalidStateError) as caught:
        apply(run, command, T0 + timedelta(days=1))
    assert caught.value.details == {"status": status.value}
    assert run.collect_events() == []
    assert view(run) == before


def test_complete_is_only_allowed_from_running() -> None:
    run = new_run()
    run.pause(T0)
    with pytest.raises(InvalidStateError):
        run.complete(T0)
    run.resume(T0)
    run.complete(T0)
    assert run.status is RunStatus.COMPLETED


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(COMMANDS), max_size=20))
def test_any_command_sequence_follows_the_transition_table(commands: list[str]) -> None:
    run = new_run()
    events: list[Any] = list(run.collect_events())
    status = RunStatus.RUNNING
    for step, command in enumerate(commands, start=1):
        before = view(run)
        at = T0 + timedelta(seconds=step)
        if command in ALLOWED[status]:
            apply(run, command, at)
            status = OUTCOME[command]
            new = run.collect_events()
            assert names(new) == [EVENT_NAME[command]]
            events += new
            assert run.version == before["version"] + 1
        else:
            with pytest.raises(InvalidStateError):
                apply(run, command, at)
            assert run.collect_events() == []
            assert view(run) == before
        assert run.status is status
    assert view(replay(events)) == view(run)


# --- stages and credits ------------------------------------------------------------------


def test_starting_and_completing_stages() -> None:
    run = new_run()
    run.collect_events()
    run.start_stage(1, T0)
    assert run.current_stage == 1
    assert run.stages[1]["status"] == StageStatus.RUNNING.value
    run.complete_stage(1, T0)
    assert run.stages[1]["status"] == StageStatus.COMPLETED.value
    run.start_stage(2, T0)
    assert run.current_stage == 2
    assert run.stages[2]["status"] == StageStatus.RUNNING.value
    assert run.stages[3]["status"] == StageStatus.PENDING.value
    assert names(run.collect_events()) == ["StageStarted", "StageCompleted", "StageStarted"]


@pytest.mark.parametrize(
    ("setup", "attempt"),
    [
        ((), ("complete_stage", 1)),  # never started
        ((("start_stage", 1),), ("start_stage", 1)),  # already running
        ((("start_stage", 1), ("complete_stage", 1)), ("start_stage", 1)),  # already done
        ((("start_stage", 1), ("complete_stage", 1)), ("complete_stage", 1)),  # done twice
        ((("start_stage", 1),), ("complete_stage", 2)),  # another stage
    ],
)
def test_stage_commands_out_of_order_are_refused(
    setup: tuple[tuple[str, int], ...], attempt: tuple[str, int]
) -> None:
    run = new_run()
    for command, stage in setup:
        getattr(run, command)(stage, T0)
    run.collect_events()
    before = view(run)
    with pytest.raises(InvalidStateError):
        getattr(run, attempt[0])(attempt[1], T0)
    assert run.collect_events() == []
    assert view(run) == before


@pytest.mark.parametrize("status", [s for s in RunStatus if s is not RunStatus.RUNNING])
def test_a_stage_starts_only_while_running(status: RunStatus) -> None:
    run = new_run()
    for done in PATH_TO[status]:
        apply(run, done, T0)
    run.collect_events()
    before = view(run)
    with pytest.raises(InvalidStateError):
        run.start_stage(2, T0)
    assert run.collect_events() == []
    assert view(run) == before


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_an_ended_run_neither_completes_stages_nor_consumes_credits(status: RunStatus) -> None:
    run = new_run()
    run.start_stage(1, T0)
    run.consume_credits(1, 5)
    for done in PATH_TO[status]:
        apply(run, done, T0)
    run.collect_events()
    before = view(run)
    with pytest.raises(InvalidStateError):
        run.complete_stage(1, T0)
    with pytest.raises(InvalidStateError):
        run.consume_credits(1, 5)
    assert run.collect_events() == []
    assert view(run) == before


def test_credits_accumulate_per_stage_and_in_total() -> None:
    run = new_run()
    run.collect_events()
    run.consume_credits(1, 3)
    run.consume_credits(1, 4)
    run.consume_credits(4, 10)
    run.pause(T0)
    run.consume_credits(6, 6)  # an in-flight call may still be charged while paused
    assert run.stages[1]["credits_used"] == 7
    assert run.stages[4]["credits_used"] == 10
    assert run.stages[6]["credits_used"] == 6
    assert run.stages[2]["credits_used"] == 0
    assert run.total_credits_used == 23
    assert names(run.collect_events()).count("CreditsConsumed") == 4


def test_a_negative_charge_is_refused() -> None:
    run = new_run()
    run.consume_credits(2, 5)
    run.collect_events()
    before = view(run)
    with pytest.raises(InvalidStateError):
        run.consume_credits(2, -1)
    assert run.collect_events() == []
    assert view(run) == before


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Stage)), st.integers(0, 10_000)), max_size=30))
def test_credits_consumed_sum_up(charges: list[tuple[Stage, int]]) -> None:
    run = new_run()
    for stage, amount in charges:
        run.consume_credits(int(stage), amount)
    for stage in Stage:
        expected = sum(amount for s, amount in charges if s == stage)
        assert run.stages[int(stage)]["credits_used"] == expected
    assert run.total_credits_used == sum(amount for _, amount in charges)
    assert run.total_credits_used == sum(s["credits_used"] for s in run.stages.values())
    assert view(replay(run.collect_events())) == view(run)


# --- the application: runs, sites and accounts together -----------------------------------


class TickingClock:
    """A clock that moves on by a second (and a little) every time it is read."""

    def __init__(self) -> None:
        self.last = T0

    def now(self) -> datetime:
        self.last += timedelta(seconds=1, microseconds=1)
        return self.last


@dataclass
class RunModel:
    account_id: UUID
    site_id: UUID
    estimated: int
    reserved: int
    started_at: datetime
    status: RunStatus = RunStatus.RUNNING
    paused_at: datetime | None = None
    resumed_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None
    version: int = 1


def pending_work() -> st.SearchStrategy[PendingWork]:
    small = st.integers(0, 3)
    return st.builds(
        PendingWork,
        keywords=st.integers(0, 30),
        clusters=small,
        ideas=small,
        tasks=small,
        content=small,
        image_prompts=small,
    )


class AppMachine(RuleBasedStateMachine):
    """Random commands against AutomationApp on the in-memory store, checked against a model."""

    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.clock = TickingClock()
        self.app = AutomationApp(env=dict(POPO), clock=self.clock)
        self.granted: dict[UUID, int] = {}
        self.accounts: list[UUID] = []
        for name, credits in (("Acme", 1500), ("Globex", 100)):
            account_id, _token = self.app.open_account(name, credits)
            self.accounts.append(account_id)
            self.granted[account_id] = credits
        acme, globex = self.accounts
        self.sites: list[tuple[UUID, UUID]] = [
            (owner, self.app.register_site(owner, f"site {i}", "Europe/Berlin").value.id)
            for i, owner in enumerate((acme, acme, globex))
        ]
        self.active: dict[UUID, UUID | None] = {site_id: None for _, site_id in self.sites}
        self.model: dict[UUID, RunModel] = {}

    # --- helpers ---------------------------------------------------------------------

    def load(self, aggregate_id: UUID) -> Any:
        """The aggregate rebuilt from the store (the repository keeps no cache here)."""
        assert self.app.repository.cache is None
        return self.app.repository.get(aggregate_id)

    def versions(self, *ids: UUID) -> list[int]:
        return [self.load(i).version for i in ids]

    def expected_balance(self, account_id: UUID) -> int:
        held = sum(
            m.reserved
            for m in self.model.values()
            if m.account_id == account_id and m.status.is_active
        )
        return self.granted[account_id] - held

    # --- rules -----------------------------------------------------------------------

    @initialize(target=runs)
    def first_run(self) -> Any:
        return self.start_run(0, PendingWork(tasks=1))

    @rule(target=runs, which=st.integers(0, 2), pending=pending_work())
    def start_run(self, which: int, pending: PendingWork) -> Any:
        account_id, site_id = self.sites[which]
        estimated = estimate_credits(pending, 20)
        required = required_credits(estimated)
        balance = self.expected_balance(account_id)
        before = self.versions(account_id, site_id)
        position = self.app.recorder.max_notification_id() or 0
        if self.active[site_id] is not None:
            event("start refused: run in progress")
            with pytest.raises(RunInProgressError):
                self.app.start_run(account_id, site_id, pending)
        elif required > balance:
            event("start refused: insufficient credits")
            with pytest.raises(InsufficientCreditsError) as caught:
                self.app.start_run(account_id, site_id, pending)
            assert (caught.value.required, caught.value.balance) == (required, balance)
        else:
            event("start: ok")
            written = self.app.start_run(account_id, site_id, pending)
            run_id = written.value.id
            assert run_id not in self.model
            assert written.position > position
            self.model[run_id] = RunModel(
                account_id=account_id,
                site_id=site_id,
                estimated=estimated,
                reserved=required,
                started_at=self.clock.last,
            )
            self.active[site_id] = run_id
            assert view(self.load(run_id)) == view(written.value)
            return run_id
        assert self.versions(account_id, site_id) == before
        assert (self.app.recorder.max_notification_id() or 0) == position  # nothing was written
        return multiple()

    def control(self, run_id: UUID, command: str) -> None:
        m = self.model[run_id]
        calls: dict[str, Callable[[], Any]] = {
            "pause": lambda: self.app.pause_run(m.account_id, run_id),
            "resume": lambda: self.app.resume_run(m.account_id, run_id),
            "cancel": lambda: self.app.cancel_run(m.account_id, run_id),
            "complete": lambda: self.app.complete_run(m.account_id, run_id),
            "fail": lambda: self.app.fail_run(m.account_id, run_id, "it broke"),
        }
        touched = (run_id, m.site_id, m.account_id)
        before = self.versions(*touched)
        if command not in ALLOWED[m.status]:
            event(f"{command}: refused")
            with pytest.raises(InvalidStateError):
                calls[command]()
            assert self.versions(*touched) == before
            return
        event(f"{command}: ok")
        written = calls[command]()
        at = self.clock.last
        m.status = OUTCOME[command]
        m.version += 1
        assert written.value == m.status.value
        if command == "pause":
            m.paused_at = at
        elif command == "resume":
            m.resumed_at = at
        else:
            m.completed_at = at
            m.error = "it broke" if command == "fail" else None
            self.active[m.site_id] = None

    @rule(run_id=runs)
    def pause(self, run_id: UUID) -> None:
        self.control(run_id, "pause")

    @rule(run_id=runs)
    def resume(self, run_id: UUID) -> None:
        self.control(run_id, "resume")

    @rule(run_id=runs)
    def cancel(self, run_id: UUID) -> None:
        self.control(run_id, "cancel")

    @rule(run_id=runs)
    def complete(self, run_id: UUID) -> None:
        self.control(run_id, "complete")

    @rule(run_id=runs)
    def fail(self, run_id: UUID) -> None:
        self.control(run_id, "fail")

    def runs_in(self, status: RunStatus) -> list[UUID]:
        return sorted((i for i, m in self.model.items() if m.status is status), key=str)

    @precondition(lambda self: bool(self.runs_in(RunStatus.RUNNING)))
    @rule(data=st.data())
    def pause_a_running_run(self, data: st.DataObject) -> None:
        self.control(data.draw(st.sampled_from(self.runs_in(RunStatus.RUNNING))), "pause")

    @precondition(lambda self: bool(self.runs_in(RunStatus.PAUSED)))
    @rule(data=st.data())
    def resume_a_paused_run(self, data: st.DataObject) -> None:
        self.control(data.draw(st.sampled_from(self.runs_in(RunStatus.PAUSED))), "resume")

    @rule(run_id=runs, command=st.sampled_from(COMMANDS))
    def control_as_another_account(self, run_id: UUID, command: str) -> None:
        m = self.model[run_id]
        stranger = next(a for a in self.accounts if a != m.account_id)
        before = self.versions(run_id, m.site_id, m.account_id)
        args: tuple[Any, ...] = (stranger, run_id, "x") if command == "fail" else (stranger, run_id)
        with pytest.raises(RunNotFoundError):
            getattr(self.app, f"{command}_run")(*args)
        assert self.versions(run_id, m.site_id, m.account_id) == before

    @rule(which=st.integers(0, 1), amount=st.integers(1, 300))
    def grant(self, which: int, amount: int) -> None:
        account_id = self.accounts[which]
        self.granted[account_id] += amount
        assert self.app.grant_credits(account_id, amount) == self.expected_balance(account_id)

    @rule(which=st.integers(0, 1), amount=st.integers(max_value=0) | st.just(True))
    def grant_nothing(self, which: int, amount: int) -> None:
        account_id = self.accounts[which]
        before = self.versions(account_id)
        with pytest.raises(InvalidValueError):
            self.app.grant_credits(account_id, amount)
        assert self.versions(account_id) == before

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def everything_is_consistent(self) -> None:
        runs = {run_id: self.load(run_id) for run_id in self.model}
        self.check_runs(runs)
        self.check_sites(runs)
        self.check_accounts(runs)

    def check_runs(self, runs: dict[UUID, Any]) -> None:
        """Every run is in one of the five states, and as stored it is what its events say
        and what the model expects."""
        for run_id, m in self.model.items():
            stored = runs[run_id]
            rebuilt = replay(self.app.events.get(run_id))
            assert isinstance(stored, AutomationRun)
            assert isinstance(rebuilt, AutomationRun)
            assert stored.status in set(RunStatus)
            assert view(rebuilt) == view(stored)
            assert (
                stored.status,
                stored.started_at,
                stored.paused_at,
                stored.resumed_at,
                stored.completed_at,
                stored.error,
                stored.version,
                stored.estimated_credits,
                stored.reserved_credits,
                stored.site_id,
                stored.account_id,
            ) == (
                m.status,
                m.started_at,
                m.paused_at,
                m.resumed_at,
                m.completed_at,
                m.error,
                m.version,
                m.estimated,
                m.reserved,
                m.site_id,
                m.account_id,
            )
            assert stored.total_credits_used == 0
            assert all(s["credits_used"] == 0 for s in stored.stages.values())

    def check_sites(self, runs: dict[UUID, Any]) -> None:
        """At most one active run per site, and the site names it."""
        for account_id, site_id in self.sites:
            active = [
                run_id for run_id, run in runs.items() if run.site_id == site_id and run.is_active
            ]
            assert len(active) <= 1
            site = self.app.site(account_id, site_id)
            assert isinstance(site, Site)
            assert site.active_run_id == (active[0] if active else None)
            assert site.active_run_id == self.active[site_id]
            assert view_site(replay(self.app.events.get(site_id))) == view_site(site)

    def check_accounts(self, runs: dict[UUID, Any]) -> None:
        """Balance = granted - reserved for active runs (nothing is charged here), >= 0."""
        for account_id in self.accounts:
            account = self.load(account_id)
            assert isinstance(account, Account)
            held = {
                str(run_id): run.reserved_credits
                for run_id, run in runs.items()
                if run.account_id == account_id and run.is_active
            }
            assert account.balance >= 0
            assert account.balance == self.granted[account_id] - sum(held.values())
            assert account.reservations == held
            assert self.app.balance(account_id) == account.balance


def view_site(site: Aggregate) -> dict[str, Any]:
    assert isinstance(site, Site)
    return {
        "version": site.version,
        "active_run_id": site.active_run_id,
        "last_run_at": site.last_run_at,
        "config": site.config,
        "timezone": site.timezone,
    }


AppMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestAutomationApp = AppMachine.TestCase
