"""The credit estimate of a run and the 20% margin on top of it."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.domain.estimate import PendingWork, estimate_credits, required_credits

COUNTS = [f.name for f in fields(PendingWork)]
pending_work = st.builds(PendingWork, **{name: st.integers(0, 5000) for name in COUNTS})


def test_no_work_needs_no_credits() -> None:
    assert estimate_credits(PendingWork()) == 0
    assert estimate_credits(PendingWork(), keyword_batch_size=1) == 0
    assert required_credits(0) == 0


@pytest.mark.parametrize(
    ("pending", "batch_size", "estimated"),
    [
        # one image prompt: one image (3)
        (PendingWork(image_prompts=1), 20, 3),
        # one article: content 10, one prompts call 1, two images 6
        (PendingWork(tasks=1), 20, 17),
        # one piece of content: prompts call 1, two images 6
        (PendingWork(content=1), 20, 7),
        # one idea becomes a task: same as one task
        (PendingWork(ideas=1), 20, 17),
        # one cluster: its call 2, two ideas -> two tasks (2 x 17)
        (PendingWork(clusters=1), 20, 36),
        # 20 keywords: one batch 1; max(1 batch, ceil(20 x 4/25) = 4) clusters, 4 x 36
        (PendingWork(keywords=20), 20, 1 + 4 * 36),
        # 21 keywords: two batches; ceil(21 x 4/25) = 4 clusters
        (PendingWork(keywords=21), 20, 2 + 4 * 36),
        # batch size 1: one call and (at least) one cluster per keyword
        (PendingWork(keywords=4), 1, 4 + 4 * 36),
        # a batch size below 1 is treated as 1
        (PendingWork(keywords=4), 0, 4 + 4 * 36),
    ],
)
def test_worked_examples(pending: PendingWork, batch_size: int, estimated: int) -> None:
    assert estimate_credits(pending, batch_size) == estimated


@pytest.mark.parametrize(
    ("estimated", "required"),
    [(0, 0), (1, 2), (4, 5), (5, 6), (10, 12), (17, 21), (181, 218), (1000, 1200)],
)
def test_required_examples(estimated: int, required: int) -> None:
    assert required_credits(estimated) == required


@settings(max_examples=300, deadline=None)
@given(estimated=st.integers(0, 10**30) | st.integers(0, 10_000))
def test_required_is_exactly_the_ceiling_of_120_percent(estimated: int) -> None:
    required = required_credits(estimated)
    assert isinstance(required, int)
    assert required == math.ceil(Fraction(estimated) * Fraction(6, 5))
    assert required >= estimated
    # the smallest whole number of credits that is at least 120% of the estimate
    assert 5 * required >= 6 * estimated > 5 * (required - 1)


def test_required_for_every_small_estimate() -> None:
    for estimated in range(20_000):
        assert required_credits(estimated) == math.ceil(Fraction(estimated * 6, 5))


@settings(max_examples=200, deadline=None)
@given(
    pending=pending_work,
    field=st.sampled_from(COUNTS),
    more=st.integers(1, 5000),
    batch_size=st.integers(1, 1000),
)
def test_more_pending_work_never_costs_less(
    pending: PendingWork, field: str, more: int, batch_size: int
) -> None:
    bigger = replace(pending, **{field: getattr(pending, field) + more})
    before = estimate_credits(pending, batch_size)
    after = estimate_credits(bigger, batch_size)
    assert after >= before
    if field != "keywords":
        assert after > before  # every stage below keywords costs at least one call
    assert required_credits(after) >= required_credits(before)


@settings(max_examples=200, deadline=None)
@given(pending=pending_work, smaller=st.integers(1, 1000), larger=st.integers(1, 1000))
def test_larger_keyword_batches_never_cost_more(
    pending: PendingWork, smaller: int, larger: int
) -> None:
    smaller, larger = min(smaller, larger), max(smaller, larger)
    assert estimate_credits(pending, larger) <= estimate_credits(pending, smaller)


@settings(max_examples=200, deadline=None)
@given(pending=pending_work, batch_size=st.integers(1, 1000))
def test_the_estimate_is_never_negative_and_zero_only_without_work(
    pending: PendingWork, batch_size: int
) -> None:
    estimated = estimate_credits(pending, batch_size)
    assert estimated >= 0
    assert (estimated == 0) == (pending == PendingWork())
