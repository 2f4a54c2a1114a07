"""The stage worker: processes one batch per work message, exactly once in effect.

A message may come twice and the worker may die at any line. The batch's outputs and its
receipt are committed together; the run records the batch (and the account is charged)
once, refusing a second record; so a redelivery redoes nothing and charges nothing.
The message is acknowledged only after the batch's events are committed.
"""

from __future__ import annotations

import logging

import anyio.to_thread

from automation.application.app import AutomationApp
from automation.application.pipeline import BatchWork
from automation.application.ports import WorkMessage
from automation.application.stages import StageFailedError, StageRunner

log = logging.getLogger(__name__)


class StageWorker:
    def __init__(self, app: AutomationApp, runner: StageRunner) -> None:
        self.app = app
        self.runner = runner

    async def __call__(self, message: WorkMessage) -> None:
        work = BatchWork.from_body(message.body)
        await anyio.to_thread.run_sync(self.process, work)

    def process(self, work: BatchWork) -> None:
        if not self.app.batch_is_due(work):
            log.info("batch %s is not due (done, paused or ended); skipped", work.message_id)
            return
        try:
            receipt = self.runner.run_batch(
                work.site_id,
                work.run_id,
                work.stage,
                work.batch,
                work.item_ids,
                self.app.clock.now(),
            )
        except StageFailedError as failure:
            log.error("run %s failed at stage %d: %s", work.run_id, work.stage, failure)
            self.app.fail_run_with(work.run_id, str(failure))
            return
        self.app.record_batch(work, receipt)
