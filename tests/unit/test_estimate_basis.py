"""The estimate's model: items flowing down the stages, dry runs, learned and prior rates."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.domain.estimate import (
    DRY_RUN,
    LEARNED,
    PRIOR,
    PRIOR_RATES,
    DryRun,
    PendingWork,
    error_ratio,
    plan,
)
from automation.domain.pricing import (
    PRIOR_TOKENS,
    StageUsage,
    TokenPrice,
    call_credits,
    token_rates,
)


def test_a_dry_run_replaces_the_stage_1_prediction_and_the_rest_follows_it() -> None:
    # 30 keywords in 3 batches that clustered into 11 groups (the prior would say 5).
    estimate = plan(PendingWork(keywords=30, clusters=2), 10, dry_run=DryRun(30, 3, 11, 3))
    first, ideas, tasks, content, prompts, images = estimate.stages
    assert (first.items, first.calls, first.outputs, first.credits) == (30, 3, 11, 3)
    assert (first.source, first.yield_) == (DRY_RUN, Fraction(11, 30))
    assert (ideas.items, ideas.calls, ideas.outputs, ideas.credits) == (13, 13, 26, 26)
    assert (tasks.items, tasks.calls, tasks.credits) == (26, 0, 0)
    assert (content.items, content.credits) == (26, 260)
    assert (prompts.items, prompts.outputs, prompts.credits) == (26, 52, 26)
    assert (images.items, images.credits) == (52, 156)
    assert estimate.credits == 3 + 26 + 260 + 26 + 156


def test_without_a_dry_run_stage_1_has_at_least_one_cluster_per_batch() -> None:
    [first, *_] = plan(PendingWork(keywords=4), 1).stages
    assert (first.calls, first.outputs, first.source) == (4, 4, PRIOR)
    [first, *_] = plan(PendingWork(keywords=100), 50).stages
    assert (first.calls, first.outputs) == (2, 16)  # ceil(100 x 4/25)


@settings(max_examples=100, deadline=None)
@given(
    pending=st.builds(PendingWork, *[st.integers(0, 300)] * 6),
    batch=st.integers(1, 50),
    clusters=st.integers(0, 400),
)
def test_the_basis_adds_up(pending: PendingWork, batch: int, clusters: int) -> None:
    batches = -(-pending.keywords // batch)
    dry = DryRun(pending.keywords, batches, max(clusters, batches), batches)
    estimate = plan(pending, batch, dry_run=dry)
    assert estimate.credits == sum(s.credits for s in estimate.stages)
    for before, after in itertools.pairwise(estimate.stages):
        assert after.items == pending.at(after.stage) + before.outputs
    described = [s.as_dict() for s in estimate.stages]
    assert described[0]["name"] == "Keywords → Clusters"
    assert all(isinstance(d["credits"], int) for d in described)


def test_call_credits_round_up_and_are_never_zero() -> None:
    assert call_credits(1000, 0, TokenPrice(1, 4)) == 1
    assert call_credits(1001, 0, TokenPrice(1, 4)) == 2
    assert call_credits(2000, 500, TokenPrice(1, 4)) == 4
    assert call_credits(0, 0, TokenPrice(1, 4)) == 1
    assert call_credits(Fraction(2001, 2), 0, TokenPrice(2, 0)) == 3  # 2001 / 1000, up


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 50), st.integers(0, 50))
def test_call_credits_are_the_exact_ceiling(i: int, o: int, pin: int, pout: int) -> None:
    exact = math.ceil(Fraction(i * pin + o * pout, 1000))
    assert call_credits(i, o, TokenPrice(pin, pout)) == max(1, exact)


def test_a_model_priced_by_tokens_starts_from_the_priors() -> None:
    price = TokenPrice(1, 4)
    rates = token_rates({}, price)
    for stage in (1, 2, 4, 5, 6):
        assert rates[stage].source == PRIOR
        assert rates[stage].yield_ == PRIOR_RATES[stage].yield_
        assert rates[stage].credits_per_call == call_credits(*PRIOR_TOKENS[stage], price)
    assert rates[3].credits_per_call == 0


def test_a_model_priced_by_tokens_learns_from_completed_runs() -> None:
    usage = {
        1: StageUsage(items=60, outputs=12, metered_calls=3, input_tokens=3000, output_tokens=900),
        2: StageUsage(items=12, outputs=36, metered_calls=12, input_tokens=2400, output_tokens=0),
        4: StageUsage(items=36, outputs=36),  # yields known, tokens not reported
    }
    rates = token_rates(usage, TokenPrice(1, 4))
    assert (rates[1].yield_, rates[1].source) == (Fraction(1, 5), LEARNED)
    assert rates[1].credits_per_call == 3  # (1000 x 1 + 300 x 4) / 1000, rounded up
    assert (rates[2].yield_, rates[2].credits_per_call) == (3, 1)
    assert rates[4].source == PRIOR  # priced from the prior tokens
    assert rates[4].yield_ == 1


@pytest.mark.parametrize(
    ("estimated", "used", "ratio"), [(100, 100, 0.0), (100, 110, 0.1), (200, 150, -0.25)]
)
def test_error_ratio(estimated: int, used: int, ratio: float) -> None:
    assert error_ratio(estimated, used) == pytest.approx(ratio)
    assert error_ratio(0, used) is None
