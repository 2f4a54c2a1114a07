"""Gathering what a run's estimate is based on, through the ports.

The domain (``domain/estimate.py``) computes from counts, yields and prices; this module
finds them: the provider's own figures where it states them, a dry run of stage 1 where
the provider allows one (over the pending keywords, oldest first, in the batches the run
will use), and for a model priced by tokens the yields and tokens per call measured on the
site's completed runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from automation.application.ai import AIProvider, ProviderProfile
from automation.application.ports import PipelineStore
from automation.domain.estimate import PRIOR_RATES, DryRun, Estimate, PendingWork, Rate, plan
from automation.domain.pricing import StageUsage, token_rates

# Keywords read per query while dry-running stage 1: a few hundred batches' worth at most.
_PAGE = 2000
_ALL = 2**62

Usage = Mapping[int, StageUsage]


@dataclass(frozen=True)
class Explained:
    """An estimate and the provider it was made for, as the ``basis`` of its answer."""

    estimate: Estimate
    provider: ProviderProfile

    @property
    def credits(self) -> int:
        return self.estimate.credits

    def basis(self) -> dict[str, Any]:
        return {
            "provider": self.provider.name,
            "stages": [s.as_dict() for s in self.estimate.stages],
        }


class Estimator:
    """Estimates for one provider over one pipeline store."""

    def __init__(self, store: PipelineStore, ai: AIProvider) -> None:
        self.store = store
        self.ai = ai
        self.profile = ai.describe()

    def estimate(
        self,
        site_id: UUID,
        pending: PendingWork,
        batch_size: int,
        usage: Callable[[], Usage],
    ) -> Explained:
        """``usage`` gives what the site's completed runs measured; it is asked only for a
        model priced by tokens."""
        rates: Mapping[int, Rate] = self.profile.rates or PRIOR_RATES
        if self.profile.price is not None:
            rates = token_rates(usage(), self.profile.price)
        dry_run = None
        if self.profile.dry_run and pending.keywords:
            dry_run = self.dry_run(site_id, max(1, batch_size))
        return Explained(plan(pending, batch_size, rates, dry_run), self.profile)

    def dry_run(self, site_id: UUID, batch_size: int) -> DryRun:
        """Cluster the pending keywords as stage 1 will: the same order, the same batches.
        The run takes the keywords waiting when each batch is dispatched; with one run per
        site and no import in between, those are these."""
        ids = self.store.pending_ids(site_id, 1, _ALL)
        page = batch_size * max(1, _PAGE // batch_size)  # whole batches per query
        batches = clusters = credits = 0
        for start in range(0, len(ids), page):
            inputs = self.store.stage_inputs(1, ids[start : start + page])
            for first in range(0, len(inputs), batch_size):
                texts = [k["keyword"] for k in inputs[first : first + batch_size]]
                result = self.ai.cluster_keywords(texts)
                batches += 1
                clusters += len(result.value)
                credits += result.credits
        return DryRun(len(ids), batches, clusters, credits)
