"""Moving a run through its stages: the orchestrator's and the workers' commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from automation.application.base import AppBase, Written
from automation.application.credit_guard import afford_more, payable_now
from automation.application.ports import BatchReceipt, Clock, PipelineStore
from automation.application.turns import Combiner
from automation.domain.account import Account
from automation.domain.config import SiteConfig
from automation.domain.errors import AccountNotFoundError, RunNotFoundError
from automation.domain.run import AWAITING_CREDITS, AutomationRun
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
    trace: dict[str, str] | None = None  # the run's: its work messages carry it


def _in_flight(run: AutomationRun) -> list[InFlight]:
    return [
        InFlight(BatchWork(run.id, run.site_id, f["stage"], f["batch"], f["item_ids"]), f["at"])
        for f in run.in_flight.values()
    ]


IDLE = "idle"  # nothing to do until the run changes (paused, ended)
MOVED = "moved"  # the run changed; its next event tells the orchestrator what comes next


@dataclass(frozen=True)
class Refill:
    """Asks a batch's record to dispatch the stage's next batches in the same save, up to
    ``window`` in flight, taking their items from ``store``."""

    store: PipelineStore
    window: int


@dataclass(frozen=True)
class Recorded:
    """What recording batches wrote, and the batches their records dispatched, by the
    message id of the batch whose worker sends them."""

    written: Written
    sends: dict[str, list[BatchWork]]


_Record = tuple[BatchWork, BatchReceipt, Refill | None]


class PipelineCommands(AppBase):
    def __init__(self, env: dict[str, str] | None = None, clock: Clock | None = None) -> None:
        super().__init__(env, clock)
        self._records: Combiner[UUID, _Record, Recorded] = Combiner(self._record_all)

    def advance_run(self, run_id: UUID, store: PipelineStore, window: int = 1) -> Dispatch | str:
        """Take the run's next step: start a stage, dispatch batches of it until
        ``window`` are in flight, complete a stage, or pass the review gate.

        Several batches of a stage run side by side only when the stage has no
        ``within_stage_delay``: a delay between batches asks for them one at a time."""

        def advance() -> Dispatch | str:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            if run.status is not RunStatus.RUNNING:
                return IDLE
            account: Account | None = None
            now = self.clock.now()
            stage = run.current_stage
            status = run.stages[stage]["status"]
            if status == StageStatus.COMPLETED.value:
                # A step may fire for an earlier event after the stage completed elsewhere
                # (a worker's refill): the next stage still waits out the delay between.
                delay = timedelta(seconds=SiteConfig.from_dict(run.config).between_stage_delay)
                if now < run.stages[stage]["done_at"] + delay:
                    return IDLE
                run.start_stage(stage + 1, now)
            elif status == StageStatus.PENDING.value:
                run.start_stage(stage, now)
            elif stage == REVIEW_GATE:
                run.pass_review_gate(store.move_to_review(run.site_id, now), now)
            else:
                config = SiteConfig.from_dict(run.config)
                width = 1 if config.within_stage_delay > 0 else max(1, window)
                earlier = _in_flight(run)
                account = self._afford_more(run, None, now)
                if run.status is not RunStatus.RUNNING:  # paused: awaiting credits
                    self._save(*self._ending(run, account))
                    return MOVED
                new = self._dispatch(run, store, config.batch_size(stage), width, now)
                if new or earlier:
                    if run.pending_events:  # dispatched, or topped up its reservation
                        self._save(run, *([account] if account else []))
                    return Dispatch(new, earlier, run.resumed_at, run.trace)
                run.complete_stage(stage, now)
            self._save(*self._ending(run, account))
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

    def batches_in_flight(self, run_id: UUID) -> list[InFlight]:
        """The running run's batches dispatched and not yet recorded (none for a run that
        is paused or has ended: a resume sends its batches again)."""
        run = self._get(AutomationRun, run_id, RunNotFoundError, to_change=False)
        return _in_flight(run) if run.status is RunStatus.RUNNING else []

    def dispatched_with(self, work: BatchWork) -> list[BatchWork]:
        """The batches still in flight that the save recording ``work`` dispatched (a
        worker's refill): for a message delivered again after its batch was recorded, whose
        first worker may have died before it sent them. They share the record's time."""
        run = self._get(AutomationRun, work.run_id, RunNotFoundError, to_change=False)
        if run.status is not RunStatus.RUNNING or not run.has_recorded(work.stage, work.batch):
            return []
        recorded_at: datetime | None = None
        for event in self.events.get(work.run_id, desc=True):
            match event:
                case AutomationRun.BatchCompleted(stage=work.stage, batch=work.batch, at=at):
                    recorded_at = at
                    break
        return [f.work for f in _in_flight(run) if f.dispatched_at == recorded_at]

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
        return self._records(work.run_id, (work, receipt, None)).written

    def record_and_refill(
        self, work: BatchWork, receipt: BatchReceipt, refill: Refill
    ) -> list[BatchWork]:
        """``record_batch``, and in the same save dispatch the stage's next batches until
        ``refill.window`` are in flight again; the batches for this caller to send.

        The stage's window then refills as soon as a batch is recorded, without a round
        trip through the orchestrator; a stage that is done passes on to the next batch
        stage in the same save. Only stages without a ``within_stage_delay`` are moved
        here, and only to a stage that follows without a ``between_stage_delay``: delays,
        the review gate, a paused or ended run and everything else stay the
        orchestrator's to decide."""
        return self._records(work.run_id, (work, receipt, refill)).sends.get(work.message_id, [])

    def _record_all(self, run_id: UUID, batches: list[_Record]) -> Recorded:
        def record() -> Recorded:
            run = self._get(AutomationRun, run_id, RunNotFoundError)
            # Loaded only to charge something: a batch that cost nothing leaves it alone.
            account: Account | None = None
            now = self.clock.now()
            for work, receipt, _ in batches:
                if run.has_recorded(work.stage, work.batch):
                    continue  # a redelivered batch: recorded and charged already
                payable = 0
                if receipt.credits:
                    if account is None:
                        account = self._get(Account, run.account_id, AccountNotFoundError)
                    payable = payable_now(run, account, receipt.credits)
                run.record_batch(
                    work.stage,
                    work.batch,
                    receipt.processed,
                    receipt.created,
                    receipt.output_ids,
                    payable,
                    now,
                )
                if receipt.metered_calls:
                    run.use_tokens(
                        work.stage,
                        receipt.metered_calls,
                        receipt.input_tokens,
                        receipt.output_tokens,
                    )
                if payable and account is not None:
                    account.charge(run.id, payable)
                if payable < receipt.credits and run.status is RunStatus.RUNNING:
                    run.pause(now, AWAITING_CREDITS)
            if not run.pending_events:
                return Recorded(Written(None, 0), {})
            senders = [work.message_id for work, _, refill in batches if refill is not None]
            refill = next((r for _, _, r in batches if r is not None), None)
            new: list[BatchWork] = []
            if refill is not None:
                account = self._afford_more(run, account, now)
                new = self._refill(run, refill, now)
            written = Written(run.status.value, self._save(*self._ending(run, account)))
            # Spread over the waiting workers, so their sends go out side by side.
            sends: dict[str, list[BatchWork]] = {}
            for index, batch in enumerate(new):
                sends.setdefault(senders[index % len(senders)], []).append(batch)
            return Recorded(written, sends)

        with self.run_turns(run_id):
            return self._retrying(record)

    def _afford_more(
        self, run: AutomationRun, account: Account | None, now: datetime
    ) -> Account | None:
        return afford_more(
            run, account, lambda: self._get(Account, run.account_id, AccountNotFoundError), now
        )

    def _refill(self, run: AutomationRun, refill: Refill, now: datetime) -> list[BatchWork]:
        """Dispatch the running stage's next batches; when it has none left and nothing in
        flight, complete it and, unless a delay separates the stages, start the next batch
        stage and dispatch its first batches. The review gate stays the orchestrator's."""
        stage = run.current_stage
        if (
            run.status is not RunStatus.RUNNING
            or stage >= REVIEW_GATE
            or run.stages[stage]["status"] != StageStatus.RUNNING.value
        ):
            return []
        config = SiteConfig.from_dict(run.config)
        if config.within_stage_delay > 0:
            return []  # the orchestrator paces this stage, one batch per delay
        width = max(1, refill.window)
        new = self._dispatch(run, refill.store, config.batch_size(stage), width, now)
        if new or run.in_flight:
            return new
        run.complete_stage(stage, now)
        following = stage + 1
        if config.between_stage_delay > 0 or following >= REVIEW_GATE:
            return []
        run.start_stage(following, now)
        return self._dispatch(run, refill.store, config.batch_size(following), width, now)

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
