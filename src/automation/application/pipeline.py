"""Moving a run through its stages: the orchestrator's and the workers' commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from automation.application.base import AppBase, Written
from automation.application.ports import BatchReceipt, Clock, PipelineStore
from automation.application.turns import Combiner
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


@dataclass(frozen=True)
class InFlight:
    """A batch dispatched earlier and not yet recorded: the orchestrator sends it again
    when its message may have been lost (after the watchdog time, or a resume)."""

    work: BatchWork
    dispatched_at: datetime


@dataclass(frozen=True)
class Dispatch:
    """What a step of a run in a batch stage did: the batches it dispatched now, and
    those still in flight from earlier steps."""

    new: list[BatchWork]
    in_flight: list[InFlight]
    resumed_at: datetime | None = None


IDLE = "idle"  # nothing to do until the run changes (paused, ended)
MOVED = "moved"  # the run changed; its next event tells the orchestrator what comes next


class PipelineCommands(AppBase):
    def __init__(self, env: dict[str, str] | None = None, clock: Clock | None = None) -> None:
        super().__init__(env, clock)
        self._records: Combiner[UUID, tuple[BatchWork, BatchReceipt], Written] = Combiner(
            self._record_all
        )

    def advance_run(self, run_id: UUID, store: PipelineStore, window: int = 1) -> Dispatch | str:
        """Take the run's next step: start a stage, dispatch batches of it until
        ``window`` are in flight, complete a stage, or pass the review gate.

        Several batches of a stage run side by side only when the stage has no
        ``within_stage_delay``: a delay between batches asks for them one at a time."""

        def advance() -> Dispatch | str:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            if run.status is not RunStatus.RUNNING:
                return IDLE
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
                config = SiteConfig.from_dict(run.config)
                width = 1 if config.within_stage_delay > 0 else max(1, window)
                earlier = [
                    InFlight(
                        BatchWork(run.id, run.site_id, f["stage"], f["batch"], f["item_ids"]),
                        f["at"],
                    )
                    for f in run.in_flight.values()
                ]
                new = self._dispatch(run, store, config.batch_size(stage), width, now)
                if new:
                    self._save(run)
                if new or earlier:
                    return Dispatch(new, earlier, run.resumed_at)
                run.complete_stage(stage, now)
            self._save(*self._ending(run))
            return MOVED

        with self.run_turns(run_id):
            return self._retrying(advance)

    @staticmethod
    def _dispatch(
        run: AutomationRun, store: PipelineStore, size: int, width: int, now: datetime
    ) -> list[BatchWork]:
        free = width - len(run.in_flight)
        if free <= 0:
            return []
        # Items in flight are still pending in the content store until their batch commits.
        taken = run.items_in_flight()
        stage = run.current_stage
        waiting = store.pending_ids(run.site_id, stage, size * free + len(taken))
        item_ids = [i for i in waiting if i not in taken]
        new: list[BatchWork] = []
        for start in range(0, min(len(item_ids), size * free), size):
            chunk = item_ids[start : start + size]
            batch = run.dispatch_batch(stage, chunk, now, width)
            new.append(BatchWork(run.id, run.site_id, stage, batch, chunk))
        return new

    def batch_is_due(self, work: BatchWork) -> bool:
        """Whether a worker should process this batch now: it is one of the run's batches
        in flight and the run is running (a paused run starts no batch; one sent before
        the pause is sent again on resume)."""
        run = self._get(AutomationRun, work.run_id, RunNotFoundError, to_change=False)
        return run.status is RunStatus.RUNNING and (work.stage, work.batch) in run.in_flight

    def record_batch(self, work: BatchWork, receipt: BatchReceipt) -> Written:
        """Record what a batch took, made and cost, and charge the account, once.

        Batches of one run that finish together in this process are recorded together:
        one load and one save for all of them (see ``turns.py``)."""
        return self._records(work.run_id, (work, receipt))

    def _record_all(self, run_id: UUID, batches: list[tuple[BatchWork, BatchReceipt]]) -> Written:
        def record() -> Written:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            account = self._get(Account, run.account_id, AccountNotFoundError)
            now = self.clock.now()
            for work, receipt in batches:
                if run.has_recorded(work.stage, work.batch):
                    continue  # a redelivered batch: recorded and charged already
                payable = min(receipt.credits, account.payable_for(run.id))
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
            if not run.pending_events:
                return Written(None, 0)
            return Written(run.status.value, self._save(*self._ending(run, account)))

        with self.run_turns(run_id):
            return self._retrying(record)

    def fail_run_with(self, run_id: UUID, error: str) -> Written:
        """Fail a run (its partial results stay); frees its site and unused credits."""

        def fail() -> Written:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            if not run.is_active:
                return Written(run.status.value, 0)
            run.fail(error, self.clock.now())
            return Written(run.status.value, self._save(*self._ending(run)))

        with self.run_turns(run_id):
            return self._retrying(fail)
