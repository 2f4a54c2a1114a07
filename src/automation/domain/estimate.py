"""How many credits a run will use, from the work pending at each stage.

The model follows each stage's items down the pipeline: a stage's items are what waits at
its entry plus what the stage before it makes; it makes ``items x yield`` outputs (stage 1:
counted by a dry run where the provider allows one) in ``calls`` AI calls at
``credits_per_call`` each. Where each figure came from is kept beside it, so an estimate
explains itself. Required credits are the estimate plus a 20% margin. See docs/credits.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from automation.domain.values import Stage

# Where a figure came from, in the estimate's basis.
DRY_RUN = "dry_run"  # stage 1 clustered offline, in the run's own batches: counted exactly
PROVIDER = "provider"  # the provider states its yields and prices (the local provider)
LEARNED = "learned"  # measured on the site's completed runs
PRIOR = "prior"  # no better knowledge: the figures below

AI_STAGES = (1, 2, 4, 5, 6)  # stage 3 and the review gate call no AI


@dataclass(frozen=True)
class Rate:
    """One stage's figures: outputs per input item, and credits per AI call."""

    yield_: Fraction
    credits_per_call: Fraction
    source: str = PRIOR


# The local provider's figures, and the prior for any other: clusters per keyword was
# measured on the demo's keywords (34-37 clusters of 230 at batch sizes from 15 up).
PRIOR_RATES: Mapping[int, Rate] = {
    1: Rate(Fraction(4, 25), Fraction(1)),
    2: Rate(Fraction(2), Fraction(2)),
    3: Rate(Fraction(1), Fraction(0)),
    4: Rate(Fraction(1), Fraction(10)),
    5: Rate(Fraction(2), Fraction(1)),
    6: Rate(Fraction(1), Fraction(3)),
}


@dataclass(frozen=True)
class PendingWork:
    """Items waiting at the entry of each AI stage (and of stage 3)."""

    keywords: int = 0
    clusters: int = 0
    ideas: int = 0
    tasks: int = 0
    content: int = 0
    image_prompts: int = 0

    def at(self, stage: int) -> int:
        counts = (self.keywords, self.clusters, self.ideas, self.tasks, self.content)
        return (*counts, self.image_prompts)[stage - 1]


@dataclass(frozen=True)
class DryRun:
    """Stage 1 done offline over the pending keywords, in the run's batches: what it made
    and what it would cost."""

    keywords: int
    batches: int
    clusters: int
    credits: int


@dataclass(frozen=True)
class StageEstimate:
    stage: int
    items: int
    yield_: Fraction
    outputs: int
    calls: int
    credits_per_call: Fraction
    credits: int
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "name": Stage(self.stage).title,
            "items": self.items,
            "yield": _number(self.yield_),
            "outputs": self.outputs,
            "calls": self.calls,
            "credits_per_call": _number(self.credits_per_call),
            "credits": self.credits,
            "source": self.source,
        }


@dataclass(frozen=True)
class Estimate:
    stages: tuple[StageEstimate, ...]

    @property
    def credits(self) -> int:
        return sum(s.credits for s in self.stages)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def _number(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else round(float(value), 4)


def plan(
    pending: PendingWork,
    keyword_batch_size: int,
    rates: Mapping[int, Rate] = PRIOR_RATES,
    dry_run: DryRun | None = None,
) -> Estimate:
    """Each stage's items, outputs, calls and credits, from its rate (or, for stage 1, a
    dry run). Fractions round up: an estimate errs towards enough credits."""
    stages: list[StageEstimate] = []
    made = 0
    for stage in range(1, 7):
        rate = rates[stage]
        items = pending.at(stage) + made
        if stage == 1:
            calls = _ceil_div(items, max(1, keyword_batch_size))
            # A cluster never spans two batches: at least one per batch.
            made = max(calls, _ceil(items * rate.yield_))
        else:
            calls = items if stage in AI_STAGES else 0
            made = _ceil(items * rate.yield_)
        estimate = StageEstimate(
            stage, items, rate.yield_, made, calls, rate.credits_per_call, 0, rate.source
        )
        if stage == 1 and dry_run is not None and dry_run.keywords:
            made = dry_run.clusters
            estimate = StageEstimate(
                1,
                dry_run.keywords,
                Fraction(made, dry_run.keywords),
                made,
                dry_run.batches,
                Fraction(dry_run.credits, max(1, dry_run.batches)),
                dry_run.credits,
                DRY_RUN,
            )
        else:
            estimate = replace(estimate, credits=_ceil(calls * rate.credits_per_call))
        stages.append(estimate)
    return Estimate(tuple(stages))


def estimate_credits(pending: PendingWork, keyword_batch_size: int = 20) -> int:
    """The estimate from the prior figures alone."""
    return plan(pending, keyword_batch_size).credits


def error_ratio(estimated: int, used: int) -> float | None:
    """How far a run's use was from its estimate: used / estimated - 1 (0: exact, 0.1: 10%
    more than estimated); None for a run estimated at 0, which has nothing to compare."""
    return used / estimated - 1 if estimated > 0 else None


def required_credits(estimated: int) -> int:
    """ceil(estimated * 1.2), in whole numbers so no float rounding can creep in."""
    return (estimated * 6 + 4) // 5
