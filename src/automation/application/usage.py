"""What a site's completed runs measured, per stage: the learned side of the estimate."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from automation.domain.pricing import StageUsage
from automation.domain.run import AutomationRun
from automation.domain.site import Site
from automation.domain.values import RunStatus

# The newest completed runs a site's figures are learned from: recent enough to follow a
# change of model or prompts, enough to smooth one odd run.
LEARN_FROM_RUNS = 5


def site_usage(repository: Any, events: Any, site_id: UUID) -> dict[int, StageUsage]:
    """Items, outputs and tokens per stage over the site's newest completed runs."""
    totals: dict[int, StageUsage] = {}
    learned = 0
    for stored in events.get(site_id, desc=True):
        if learned == LEARN_FROM_RUNS:
            break
        if not isinstance(stored, Site.RunAttached):
            continue
        run: AutomationRun = repository.get(stored.run_id)
        if run.status is not RunStatus.COMPLETED:
            continue
        learned += 1
        for stage, usage in run_usage(run).items():
            totals[stage] = totals.get(stage, StageUsage()) + usage
    return totals


def run_usage(run: AutomationRun) -> dict[int, StageUsage]:
    tokens = run.tokens
    usage = {}
    for stage in range(1, 7):
        figures = run.stages[stage]
        calls, input_tokens, output_tokens = tokens.get(stage, (0, 0, 0))
        usage[stage] = StageUsage(
            figures["processed"], figures["created"], calls, input_tokens, output_tokens
        )
    return usage
