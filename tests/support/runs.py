"""Running one run to its end on a built stack, from a synchronous test."""

from __future__ import annotations

import asyncio
from uuid import UUID

from automation.bootstrap import Services
from automation.domain.run import AutomationRun
from consumers.runtime import BackgroundRoles

_ENDS = AutomationRun.RunCompleted | AutomationRun.RunFailed | AutomationRun.RunCancelled


def ended(services: Services, run_id: UUID) -> bool:
    """From the stored events, not the cached run: a copy of the cached run taken while a
    worker thread fast-forwards it can fail ("dictionary keys changed during iteration")."""
    [last] = services.app.events.get(run_id, desc=True, limit=1)
    return isinstance(last, _ENDS)


async def _until_ended(services: Services, account_id: UUID, run_id: UUID) -> AutomationRun:
    roles = BackgroundRoles(services, orchestrator=True, workers=True)
    await roles.start()
    try:
        deadline = asyncio.get_running_loop().time() + 300
        while not ended(services, run_id):
            assert asyncio.get_running_loop().time() < deadline, "run stuck"
            await asyncio.sleep(0.05)
        return services.app.run(account_id, run_id)
    finally:
        await roles.stop()


def run_to_end(services: Services, account_id: UUID, run_id: UUID) -> AutomationRun:
    """Run the orchestrator and workers until the run has ended; the ended run. Each call
    needs a stack of its own: the in-process bus keeps the event loop it first ran in."""
    return asyncio.run(_until_ended(services, account_id, run_id))
