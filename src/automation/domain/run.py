"""The AutomationRun aggregate: one run of the pipeline for one site.

Public methods validate and raise a DomainError; the ``_``-prefixed event methods only
mutate, so replaying stored events is deterministic. Every event is a class declared here,
so readers name the class itself, and renaming or removing one fails the type check.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from automation.domain.copying import FastCopy
from automation.domain.errors import InvalidStateError
from automation.domain.values import RunStatus, Stage, StageStatus

_NEW_STAGE = {"status": StageStatus.PENDING.value, "processed": 0, "created": 0, "credits_used": 0}


# Why a run paused: a client asked, or the account could not pay for more work.
PAUSE_REQUESTED = "requested"
AWAITING_CREDITS = "awaiting_credits"
CANCEL_REQUESTED = "requested"


class AutomationRun(FastCopy, Aggregate):
    INITIAL_VERSION = 1

    class RunStarted(Aggregate.Created):
        """Version 2 records ``reserved_credits``. Version 1 runs did not: they reserved
        ceil(estimate x 1.2), which is what the upcaster fills in when one is loaded.
        Version 3 records what the estimate was based on; older runs show an empty one."""

        class_version = 3
        site_id: UUID
        account_id: UUID
        trigger_type: str
        config: dict[str, Any]
        estimated_credits: int
        reserved_credits: int
        estimate_basis: dict[str, Any]
        at: datetime
        # The W3C trace context of the command that started the run, which its batches
        # continue. Not public data; events stored without it load with none.
        trace: dict[str, str] | None = None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("reserved_credits", (state["estimated_credits"] * 6 + 4) // 5)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state.setdefault("estimate_basis", {})

    class RunPaused(Aggregate.Event):
        """Version 2 records why: ``requested`` by a client, or ``awaiting_credits`` when
        the account could not pay for more work. Version 1 pauses were all requested."""

        class_version = 2
        at: datetime
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("reason", PAUSE_REQUESTED)

    class ReservationToppedUp(Aggregate.Event):
        """More of the account's free balance held for the run (``CreditsReserved`` on
        the account, in the same save)."""

        amount: int

    class RunResumed(Aggregate.Event):
        at: datetime
        trace: dict[str, str] | None = None  # as in RunStarted, of the resume command

    class RunCancelled(Aggregate.Event):
        """Version 2 records why: ``requested`` by a client, or the time limit the run
        passed (see ``overdue``). Version 1 cancels were all requested."""

        class_version = 2
        at: datetime
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("reason", CANCEL_REQUESTED)

    class RunCompleted(Aggregate.Event):
        at: datetime

    class RunFailed(Aggregate.Event):
        error: str
        at: datetime

    class StageStarted(Aggregate.Event):
        stage: int
        at: datetime

    class StageCompleted(Aggregate.Event):
        stage: int
        processed: int
        created: int
        at: datetime

    class BatchDispatched(Aggregate.Event):
        stage: int
        batch: int
        item_ids: list[str]
        at: datetime

    class BatchCompleted(Aggregate.Event):
        stage: int
        batch: int
        processed: int
        created: int
        output_ids: list[str]
        credits: int
        at: datetime

    class CreditsConsumed(Aggregate.Event):
        stage: int
        amount: int

    class TokensUsed(Aggregate.Event):
        """A batch's calls to a model priced by tokens, as their server reported them: the
        estimate learns tokens per call from these."""

        stage: int
        calls: int
        input_tokens: int
        output_tokens: int

    @event(RunStarted)
    def __init__(  # not keyword-only: eventsourcing would then require ``trace``
        self,
        id: UUID,
        site_id: UUID,
        account_id: UUID,
        trigger_type: str,
        config: dict[str, Any],
        estimated_credits: int,
        reserved_credits: int,
        estimate_basis: dict[str, Any],
        at: datetime,
        trace: dict[str, str] | None = None,
    ) -> None:
        self.trace = trace or {}
        self.site_id = site_id
        self.account_id = account_id
        self.trigger_type = trigger_type
        self.config = config
        self.estimated_credits = estimated_credits
        self.reserved_credits = reserved_credits
        self.status = RunStatus.RUNNING
        self.started_at = at
        self.paused_at: datetime | None = None
        self.pause_reason: str | None = None
        self.cancel_reason: str | None = None
        self.resumed_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.error: str | None = None
        self.current_stage = int(Stage.KEYWORDS_TO_CLUSTERS)
        self.total_credits_used = 0
        self.tokens: dict[int, tuple[int, int, int]] = {}  # stage: (calls, input, output)
        # Batches with workers, by (stage, batch): {"stage", "batch", "item_ids", "at"} each.
        self.in_flight: dict[tuple[int, int], dict[str, Any]] = {}
        self.completed_batches: set[tuple[int, int]] = set()
        self.batches_dispatched: dict[int, int] = {int(s): 0 for s in Stage}
        self.stages: dict[int, dict[str, Any]] = {int(s): dict(_NEW_STAGE) for s in Stage}

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    def pause(self, at: datetime, reason: str = PAUSE_REQUESTED) -> None:
        self._require(RunStatus.RUNNING, "pause")
        self._paused(at=at, reason=reason)

    @property
    def credits_left(self) -> int:
        """What is left of the run's reservation: every charge comes out of it."""
        return self.reserved_credits - self.total_credits_used

    def top_up_reservation(self, amount: int) -> None:
        self._require(None, "top up the reservation of")
        if amount <= 0:
            raise InvalidStateError("a top-up must be of at least one credit")
        self._topped_up(amount=amount)

    def resume(self, at: datetime, trace: dict[str, str] | None = None) -> None:
        self._require(RunStatus.PAUSED, "resume")
        self._resumed(at=at, trace=trace)

    def cancel(self, at: datetime, reason: str = CANCEL_REQUESTED) -> None:
        self._require(None, "cancel")
        self._cancelled(at=at, reason=reason)

    def complete(self, at: datetime) -> None:
        self._require(RunStatus.RUNNING, "complete")
        self._completed(at=at)

    def fail(self, error: str, at: datetime) -> None:
        self._require(None, "fail")
        self._failed(error=error, at=at)

    def start_stage(self, stage: int, at: datetime) -> None:
        self._require(RunStatus.RUNNING, "start a stage of")
        if self.stages[stage]["status"] != StageStatus.PENDING.value:
            raise InvalidStateError(f"stage {stage} has already started")
        self._stage_started(stage=stage, at=at)

    def complete_stage(self, stage: int, at: datetime) -> None:
        self._require(None, "complete a stage of")
        if self.stages[stage]["status"] != StageStatus.RUNNING.value:
            raise InvalidStateError(f"stage {stage} is not running")
        if self.in_flight:
            raise InvalidStateError(f"stage {stage} still has batches in flight")
        result = self.stages[stage]
        self._stage_completed(
            stage=stage, processed=result["processed"], created=result["created"], at=at
        )

    def dispatch_batch(self, stage: int, item_ids: list[str], at: datetime, window: int = 1) -> int:
        """Record which items the next batch of the current stage takes; its number.
        At most ``window`` batches are in flight at once, and no item is in two."""
        self._require(RunStatus.RUNNING, "dispatch a batch of")
        if stage != self.current_stage or self.stages[stage]["status"] != "running":
            raise InvalidStateError(f"stage {stage} is not the running stage")
        if len(self.in_flight) >= max(1, window):
            raise InvalidStateError(f"{len(self.in_flight)} batch(es) of this run are in flight")
        if not item_ids:
            raise InvalidStateError("a batch takes at least one item")
        if not self.items_in_flight().isdisjoint(item_ids):
            raise InvalidStateError("an item of this batch is already in flight")
        batch = self.batches_dispatched[stage] + 1
        self._batch_dispatched(stage=stage, batch=batch, item_ids=list(item_ids), at=at)
        return batch

    def items_in_flight(self) -> set[str]:
        return {item for flight in self.in_flight.values() for item in flight["item_ids"]}

    def has_recorded(self, stage: int, batch: int) -> bool:
        return (stage, batch) in self.completed_batches

    def record_batch(
        self,
        stage: int,
        batch: int,
        processed: int,
        created: int,
        output_ids: list[str],
        credits: int,
        at: datetime,
    ) -> None:
        """What the in-flight batch produced and cost. Kept whatever the run's status:
        a batch that was already being processed when the run was paused, cancelled or
        failed finishes, and its results and credits count."""
        if (stage, batch) not in self.in_flight:
            raise InvalidStateError(f"batch {batch} of stage {stage} is not in flight")
        if credits < 0:
            raise InvalidStateError("a charge cannot be negative")
        self._batch_completed(
            stage=stage,
            batch=batch,
            processed=processed,
            created=created,
            output_ids=list(output_ids),
            credits=credits,
            at=at,
        )
        if credits:
            self._credits_consumed(stage=stage, amount=credits)

    def pass_review_gate(self, moved: int, at: datetime) -> None:
        """Stage 7: the content that has its images now waits for review; the run is done."""
        stage = int(Stage.REVIEW_GATE)
        self._require(RunStatus.RUNNING, "pass the review gate of")
        if self.current_stage != stage or self.stages[stage]["status"] != "running":
            raise InvalidStateError("the review gate is not the running stage")
        self._stage_completed(stage=stage, processed=moved, created=0, at=at)
        self._completed(at=at)

    def use_tokens(self, stage: int, calls: int, input_tokens: int, output_tokens: int) -> None:
        self._tokens_used(
            stage=stage, calls=calls, input_tokens=input_tokens, output_tokens=output_tokens
        )

    def consume_credits(self, stage: int, amount: int) -> None:
        self._require(None, "charge")
        if amount < 0:
            raise InvalidStateError("a charge cannot be negative")
        self._credits_consumed(stage=stage, amount=amount)

    def _require(self, status: RunStatus | None, action: str) -> None:  # None: active
        if self.status is not status and (status is not None or not self.is_active):
            state = self.status.value
            raise InvalidStateError(f"cannot {action} a run that is {state}", {"status": state})

    @event(RunPaused)
    def _paused(self, at: datetime, reason: str) -> None:
        self.status = RunStatus.PAUSED
        self.paused_at = at
        self.pause_reason = reason

    @event(RunResumed)
    def _resumed(self, at: datetime, trace: dict[str, str] | None = None) -> None:
        if trace:
            self.trace = trace
        self.status = RunStatus.RUNNING
        self.resumed_at = at
        self.pause_reason = None

    @event(ReservationToppedUp)
    def _topped_up(self, amount: int) -> None:
        self.reserved_credits += amount

    @event(RunCancelled)
    def _cancelled(self, at: datetime, reason: str) -> None:
        self.status = RunStatus.CANCELLED
        self.completed_at = at
        self.cancel_reason = reason

    @event(RunCompleted)
    def _completed(self, at: datetime) -> None:
        self.status = RunStatus.COMPLETED
        self.completed_at = at

    @event(RunFailed)
    def _failed(self, error: str, at: datetime) -> None:
        self.status = RunStatus.FAILED
        self.error = error
        self.completed_at = at

    @event(StageStarted)
    def _stage_started(self, stage: int, at: datetime) -> None:
        self.current_stage = stage
        self.stages[stage]["status"] = StageStatus.RUNNING.value

    @event(StageCompleted)
    def _stage_completed(self, stage: int, processed: int, created: int, at: datetime) -> None:
        self.stages[stage].update(
            status=StageStatus.COMPLETED.value, processed=processed, created=created, done_at=at
        )

    @event(BatchDispatched)
    def _batch_dispatched(self, stage: int, batch: int, item_ids: list[str], at: datetime) -> None:
        self.batches_dispatched[stage] = batch
        self.in_flight[(stage, batch)] = {
            "stage": stage,
            "batch": batch,
            "item_ids": item_ids,
            "at": at,
        }

    @event(BatchCompleted)
    def _batch_completed(
        self,
        stage: int,
        batch: int,
        processed: int,
        created: int,
        output_ids: list[str],
        credits: int,
        at: datetime,
    ) -> None:
        self.in_flight.pop((stage, batch), None)
        self.completed_batches.add((stage, batch))
        self.stages[stage]["processed"] += processed
        self.stages[stage]["created"] += created

    @event(CreditsConsumed)
    def _credits_consumed(self, stage: int, amount: int) -> None:
        self.stages[stage]["credits_used"] += amount
        self.total_credits_used += amount

    @event(TokensUsed)
    def _tokens_used(self, stage: int, calls: int, input_tokens: int, output_tokens: int) -> None:
        calls_before, input_before, output_before = self.tokens.get(stage, (0, 0, 0))
        used = (calls_before + calls, input_before + input_tokens, output_before + output_tokens)
        self.tokens[stage] = used
