"""The stage worker: processes one batch per work message, exactly once in effect.

A message may come twice and the worker may die at any line. The batch's outputs and its
receipt are committed together; the run records the batch (and the account is charged)
once, refusing a second record; so a redelivery redoes nothing and charges nothing.
The message is acknowledged only after the batch's events are committed.

A worker that sends work (``dispatch_through``) also keeps its run's stage busy: the
record of its batch dispatches the stage's next batches in the same save (their inputs
are stored before they are sent, as the orchestrator does), and it sends them before its
own message is acknowledged. A crash between the save and the sends loses only messages:
the unacknowledged message comes again, finds its batch recorded, and its worker sends
the batches that record dispatched (those still in flight) instead of the dead one.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from functools import partial

from automation import tracing
from automation.adapters.run_metrics import BATCH_SECONDS
from automation.application.app import AutomationApp
from automation.application.pipeline import BatchWork, Refill
from automation.application.ports import WorkBus, WorkMessage
from automation.application.stages import StageFailedError, StageRunner
from automation.logs import log_context
from consumers.orchestrator import WORK_QUEUE
from consumers.threads import Threads

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 6  # about 6 s of tries in all (0.1 s, doubling)
SEND_BACKOFF_S = 0.1


class StageWorker:
    def __init__(self, app: AutomationApp, runner: StageRunner) -> None:
        self.app = app
        self.runner = runner
        self._bus: WorkBus | None = None
        self._window = 1
        self._threads = Threads("stage-worker")

    def dispatch_through(self, bus: WorkBus, window: int) -> None:
        """Refill the stage of each recorded batch up to ``window`` batches in flight, and
        send the new batches through ``bus`` (the bus this worker consumes from)."""
        self._bus, self._window = bus, window

    async def __call__(self, message: WorkMessage) -> None:
        work = BatchWork.from_body(message.body)
        # A span per batch, continuing the trace the message carries (the run's start).
        attributes: dict[str, str | int] = {
            "automation.run_id": str(work.run_id),
            "automation.stage": work.stage,
            "automation.batch": work.batch,
        }
        with tracing.span("batch", attributes, parent=message.headers):
            # In the span's context, so the AI calls' spans are its children.
            context = contextvars.copy_context()
            follow_ups = await self._threads.run(
                partial(context.run, self.process, work, message.redelivered)
            )
            if follow_ups and self._bus is not None:
                # The run's trace context, as this message brought it (none: as before).
                traced = {"trace": message.headers} if message.headers else {}
                await self._send(self._bus, follow_ups, **traced)

    def close(self) -> None:
        self._threads.close()

    @staticmethod
    async def _send(
        bus: WorkBus, batches: list[BatchWork], trace: dict[str, str] | None = None
    ) -> None:
        """Send the new batches before this message's ack, trying again for a few seconds
        while the broker is away (the connection heals by itself). If they still cannot go,
        the message is handed back; its redelivery finds its batch recorded and sends
        them again (see ``process``)."""
        waiting = list(batches)
        traced = {"headers": trace} if trace else {}  # the run's, as this batch got it
        for attempt in range(SEND_ATTEMPTS):
            results = await asyncio.gather(
                *(bus.send(WORK_QUEUE, w.as_body(), w.message_id, **traced) for w in waiting),
                return_exceptions=True,
            )
            failed = [w for w, r in zip(waiting, results, strict=True) if r is not None]
            if not failed:
                return
            error = next(r for r in results if isinstance(r, BaseException))
            if attempt == SEND_ATTEMPTS - 1:
                raise error
            log.warning("sending %d batch(es) failed (%s); trying again", len(failed), error)
            waiting = failed
            await asyncio.sleep(SEND_BACKOFF_S * 2**attempt)

    def process(self, work: BatchWork, redelivered: bool = False) -> list[BatchWork]:
        """Process one batch; the batches its record dispatched, for the caller to send.
        Every line logged meanwhile names the run, its site and the batch."""
        with log_context(run=work.run_id, site=work.site_id, batch=work.message_id):
            return self._process(work, redelivered)

    def _process(self, work: BatchWork, redelivered: bool) -> list[BatchWork]:
        """Process one batch, once.

        A batch delivered again that is already recorded is not processed again; when a
        worker refills, the batches its record dispatched and still in flight are sent
        again, since the worker that recorded it may have died before sending them."""
        if not self.app.batch_is_due(work):
            again = self.app.dispatched_with(work) if redelivered and self._bus else []
            if again:
                log.info("batch %s came again, recorded: sending its follow-ups", work.message_id)
            else:
                log.info("batch %s is not due (done, paused or ended); skipped", work.message_id)
            return again
        started = time.perf_counter()
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
            return []
        finally:
            BATCH_SECONDS.labels(str(work.stage)).observe(time.perf_counter() - started)
        if self._bus is None:
            self.app.record_batch(work, receipt)
            return []
        return self.app.record_and_refill(work, receipt, Refill(self.runner.store, self._window))
