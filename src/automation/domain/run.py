"""The AutomationRun aggregate: one run of the pipeline for one site.

Public methods validate and raise a DomainError; the ``_``-prefixed event methods only
mutate, so replaying stored events is deterministic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from automation.domain.errors import InvalidStateError
from automation.domain.values import RunStatus, Stage, StageStatus

TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class AutomationRun(Aggregate):
    INITIAL_VERSION = 1

    @event("RunStarted")
    def __init__(
        self,
        *,
        id: UUID,
        site_id: UUID,
        account_id: UUID,
        trigger_type: str,
        config: dict[str, Any],
        estimated_credits: int,
        reserved_credits: int,
        at: datetime,
    ) -> None:
        self.site_id = site_id
        self.account_id = account_id
        self.trigger_type = trigger_type
        self.config = config
        self.estimated_credits = estimated_credits
        self.reserved_credits = reserved_credits
        self.status = RunStatus.RUNNING
        self.started_at = at
        self.paused_at: datetime | None = None
        self.resumed_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.error: str | None = None
        self.current_stage = int(Stage.KEYWORDS_TO_CLUSTERS)
        self.total_credits_used = 0
        self.stages: dict[int, dict[str, Any]] = {
            int(s): {
                "status": StageStatus.PENDING.value,
                "processed": 0,
                "created": 0,
                "credits_used": 0,
            }
            for s in Stage
        }

    # --- commands -------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    def pause(self, at: datetime) -> None:
        self._require(RunStatus.RUNNING, "pause")
        self._paused(at=at)

    def resume(self, at: datetime) -> None:
        self._require(RunStatus.PAUSED, "resume")
        self._resumed(at=at)

    def cancel(self, at: datetime) -> None:
        self._require_active("cancel")
        self._cancelled(at=at)

    def complete(self, at: datetime) -> None:
        self._require(RunStatus.RUNNING, "complete")
        self._completed(at=at)

    def fail(self, error: str, at: datetime) -> None:
        self._require_active("fail")
        self._failed(error=error, at=at)

    def start_stage(self, stage: int, at: datetime) -> None:
        self._require(RunStatus.RUNNING, "start a stage of")
        if self.stages[stage]["status"] != StageStatus.PENDING.value:
            raise InvalidStateError(f"stage {stage} has already started")
        self._stage_started(stage=stage, at=at)

    def complete_stage(self, stage: int, at: datetime) -> None:
        self._require_active("complete a stage of")
        if self.stages[stage]["status"] != StageStatus.RUNNING.value:
            raise InvalidStateError(f"stage {stage} is not running")
        result = self.stages[stage]
        self._stage_completed(
            stage=stage, processed=result["processed"], created=result["created"], at=at
        )

    def consume_credits(self, stage: int, amount: int) -> None:
        self._require_active("charge")
        if amount < 0:
            raise InvalidStateError("a charge cannot be negative")
        self._credits_consumed(stage=stage, amount=amount)

    def _require(self, status: RunStatus, action: str) -> None:
        if self.status is not status:
            raise InvalidStateError(
                f"cannot {action} a run that is {self.status.value}",
                {"status": self.status.value},
            )

    def _require_active(self, action: str) -> None:
        if not self.is_active:
            raise InvalidStateError(
                f"cannot {action} a run that is {self.status.value}",
                {"status": self.status.value},
            )

    # --- events ---------------------------------------------------------------------

    @event("RunPaused")
    def _paused(self, at: datetime) -> None:
        self.status = RunStatus.PAUSED
        self.paused_at = at

    @event("RunResumed")
    def _resumed(self, at: datetime) -> None:
        self.status = RunStatus.RUNNING
        self.resumed_at = at

    @event("RunCancelled")
    def _cancelled(self, at: datetime) -> None:
        self.status = RunStatus.CANCELLED
        self.completed_at = at

    @event("RunCompleted")
    def _completed(self, at: datetime) -> None:
        self.status = RunStatus.COMPLETED
        self.completed_at = at

    @event("RunFailed")
    def _failed(self, error: str, at: datetime) -> None:
        self.status = RunStatus.FAILED
        self.error = error
        self.completed_at = at

    @event("StageStarted")
    def _stage_started(self, stage: int, at: datetime) -> None:
        self.current_stage = stage
        self.stages[stage]["status"] = StageStatus.RUNNING.value

    @event("StageCompleted")
    def _stage_completed(self, stage: int, processed: int, created: int, at: datetime) -> None:
        self.stages[stage]["status"] = StageStatus.COMPLETED.value

    @event("CreditsConsumed")
    def _credits_consumed(self, stage: int, amount: int) -> None:
        self.stages[stage]["credits_used"] += amount
        self.total_credits_used += amount
