"""Moving a run through its stages: the orchestrator's and the workers' commands."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from automation.application.base import AppBase, Written
from automation.application.ports import BatchReceipt, PipelineStore
from automation.domain.account import Account
from automation.domain.config import SiteConfig
from automation.domain.errors import AccountNotFoundError, RunNotFoundError
from automation.domain.run import AutomationRun
from automation.domain.values import RunStatus, Stage, StageStatus

REVIEW_GATE = int(Stage.REVIEW_GATE)


@dataclass(frozen=True)
class BatchWork:
    """The work message of one batch: which run, stage and batch, and its inputs."""

    run_id: UUID
    site_id: UUID
    stage: int
    batch: int
    item_ids: list[str]

    @property
    def message_id(self) -> str:
        return f"{self.run_id}/{self.stage}/{self.batch}"

    def as_body(self) -> dict[str, object]:
        return {
            "run_id": str(self.run_id),
            "site_id": str(self.site_id),
            "stage": self.stage,
            "batch": self.batch,
            "item_ids": list(self.item_ids),
        }

    @classmethod
    def from_body(cls, body: dict[str, object]) -> BatchWork:
        items = body["item_ids"]
        assert isinstance(items, list)
        return cls(
            UUID(str(body["run_id"])),
            UUID(str(body["site_id"])),
            int(str(body["stage"])),
            int(str(body["batch"])),
            [str(i) for i in items],
        )


IDLE = "idle"  # nothing to do until the run changes (paused, ended)
MOVED = "moved"  # the run changed; its next event tells the orchestrator what comes next


class PipelineCommands(AppBase):
    def advance_run(self, run_id: UUID, store: PipelineStore) -> BatchWork | str:
        """Take the run's next step: start a stage, dispatch its next batch (or send the
        one in flight again), complete a stage, or pass the review gate."""

        def advance() -> BatchWork | str:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            if run.status is not RunStatus.RUNNING:
                return IDLE
            if run.in_flight is not None:
                flight = run.in_flight
                return BatchWork(
                    run.id, run.site_id, flight["stage"], flight["batch"], flight["item_ids"]
                )
            now = self.clock.now()
            stage = run.current_stage
            status = run.stages[stage]["status"]
            if status == StageStatus.COMPLETED.value:
                run.start_stage(stage + 1, now)
            elif status == StageStatus.PENDING.value:
                run.start_stage(stage, now)
            elif stage == REVIEW_GATE:
                run.pass_review_gate(store.move_to_review(run.site_id, now), now)
            else:
                size = SiteConfig.from_dict(run.config).batch_size(stage)
                item_ids = store.pending_ids(run.site_id, stage, size)
                if not item_ids:
                    run.complete_stage(stage, now)
                else:
                    batch = run.dispatch_batch(stage, item_ids, now)
                    self._save(run)
                    return BatchWork(run.id, run.site_id, stage, batch, item_ids)
            self._save(*self._ending(run))
            return MOVED

        return self._retrying(advance)

    def batch_is_due(self, work: BatchWork) -> bool:
        """Whether a worker should process this batch now: it is the run's batch in
        flight and the run is running (a paused run starts no batch; one sent before
        the pause is sent again on resume)."""
        run = self._get(AutomationRun, work.run_id, RunNotFoundError)
        flight = run.in_flight
        return (
            run.status is RunStatus.RUNNING
            and flight is not None
            and (flight["stage"], flight["batch"]) == (work.stage, work.batch)
        )

    def record_batch(self, work: BatchWork, receipt: BatchReceipt) -> Written:
        """Record what a batch took, made and cost, and charge the account, once."""

        def record() -> Written:
            run = self._get(AutomationRun, work.run_id, RunNotFoundError)
            if run.has_recorded(work.stage, work.batch):
                return Written(None, 0)
            account = self._get(Account, run.account_id, AccountNotFoundError)
            payable = min(receipt.credits, account.payable_for(run.id))
            now = self.clock.now()
            run.record_batch(
                work.stage,
                work.batch,
                receipt.processed,
                receipt.created,
                receipt.output_ids,
                payable,
                now,
            )
            if payable:
                account.charge(run.id, payable)
            if payable < receipt.credits and run.is_active:
                run.fail(
                    f"credits ran out: stage {work.stage} needed {receipt.credits}, "
                    f"{payable} were left",
                    now,
                )
            return Written(run.status.value, self._save(*self._ending(run, account)))

        return self._retrying(record)

    def fail_run_with(self, run_id: UUID, error: str) -> Written:
        """Fail a run (its partial results stay); frees its site and unused credits."""

        def fail() -> Written:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            if not run.is_active:
                return Written(run.status.value, 0)
            run.fail(error, self.clock.now())
            return Written(run.status.value, self._save(*self._ending(run)))

        return self._retrying(fail)
