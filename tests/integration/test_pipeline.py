"""The pipeline end to end, on the embedded stack and on PostgreSQL with RabbitMQ."""

from __future__ import annotations

import pytest

from automation.adapters.ai_local import LocalAIProvider
from automation.application.ai import AIError, AIResult, Article, Idea
from automation.application.stages import RetryPolicy, StageRunner
from automation.bootstrap import Services
from automation.demo import demo_keywords
from consumers.runtime import BackgroundRoles
from tests.support import pipeline
from tests.support.pipeline import (
    FAST,
    KEYWORDS,
    items,
    run_events,
    site_with_keywords,
    until_ended,
)

# The stacks (embedded; PostgreSQL with RabbitMQ) and their wired services: pytest finds
# fixtures by their names in this module.
backend = pipeline.backend
stack = pipeline.stack
wired = pipeline.wired


@pytest.mark.anyio
async def test_a_run_takes_every_item_through_every_stage_to_the_review_gate(
    wired: Services,
) -> None:
    account_id, site_id = site_with_keywords(wired, KEYWORDS)
    balance_before = wired.app.balance(account_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = wired.app.start_run(
            account_id, site_id, wired.content.pending_work(site_id)
        ).value.id
        run = await until_ended(wired, account_id, run_id)
    finally:
        await roles.stop()
    assert run.status.value == "completed", run.error

    keywords, clusters = items(wired, "keywords", site_id), items(wired, "clusters", site_id)
    ideas, tasks = items(wired, "ideas", site_id), items(wired, "tasks", site_id)
    content, images = items(wired, "content", site_id), items(wired, "images", site_id)
    prompts = items(wired, "image_prompts", site_id)
    # Every keyword is in exactly one cluster, and the cluster lists it.
    members = [k for c in clusters for k in c["keyword_ids"]]
    assert sorted(members) == sorted(k["id"] for k in keywords)
    assert all(k["cluster_id"] in {c["id"] for c in clusters} for k in keywords)
    # Each cluster has ideas; each idea one task; each task one content.
    assert {i["cluster_id"] for i in ideas} == {c["id"] for c in clusters}
    assert sorted(t["idea_id"] for t in tasks) == sorted(i["id"] for i in ideas)
    assert sorted(c["task_id"] for c in content) == sorted(t["id"] for t in tasks)
    # Each content has its prompts and an image per prompt, and waits for review.
    assert {p["content_id"] for p in prompts} == {c["id"] for c in content}
    assert sorted(i["image_prompt_id"] for i in images) == sorted(p["id"] for p in prompts)
    assert {c["status"] for c in content} == {"review"}
    assert all(c["word_count"] >= 300 for c in content)

    # Credits: what the account paid is what the run used is its credits events' sum.
    charged = balance_before - wired.app.balance(account_id)
    consumed = sum(
        e.amount for e in run_events(wired, run_id) if type(e).__name__ == "CreditsConsumed"
    )
    assert charged == run.total_credits_used == consumed > 0
    # The run's events say which inputs each batch took and what it made.
    dispatched = [e for e in run_events(wired, run_id) if type(e).__name__ == "BatchDispatched"]
    taken = [i for e in dispatched if e.stage == 1 for i in e.item_ids]
    assert sorted(taken) == sorted(k["id"] for k in keywords)
    counts = wired.content.counts(site_id)
    assert all(pending == 0 for pending, _ in counts.values())
    assert counts[7][1] == len(content)


@pytest.mark.anyio
async def test_the_estimate_is_within_20_percent_of_the_credits_used_on_the_demo_data(
    wired: Services,
) -> None:
    account_id, site_id = site_with_keywords(
        wired,
        demo_keywords(),
        config={
            **FAST,
            "stage_1_batch_size": 20,
            "stage_2_batch_size": 10,
            "stage_4_batch_size": 20,
            "stage_5_batch_size": 20,
            "stage_6_batch_size": 40,
        },
    )
    estimate = wired.app.estimate(account_id, site_id, wired.content.pending_work(site_id))
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = wired.app.start_run(
            account_id, site_id, wired.content.pending_work(site_id)
        ).value.id
        run = await until_ended(wired, account_id, run_id, limit=300)
    finally:
        await roles.stop()
    assert run.status.value == "completed"
    used = run.total_credits_used
    assert abs(estimate["estimated_credits"] - used) <= 0.2 * used, (estimate, used)


class FailingArticles(LocalAIProvider):
    """An AI provider whose article writer is down (a fake of the AI port)."""

    def __init__(self) -> None:
        self.attempts = 0

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        self.attempts += 1
        raise AIError("the article model is overloaded (HTTP 503)")


@pytest.mark.anyio
async def test_an_ai_that_keeps_failing_is_retried_then_fails_the_run_and_frees_the_site(
    wired: Services,
) -> None:
    provider = FailingArticles()
    wired.worker.runner = StageRunner(
        wired.pipeline, provider, RetryPolicy(attempts=3, backoff=0.001)
    )
    account_id, site_id = site_with_keywords(wired, KEYWORDS)
    balance_before = wired.app.balance(account_id)
    roles = BackgroundRoles(wired, orchestrator=True, workers=True)
    await roles.start()
    try:
        run_id = wired.app.start_run(
            account_id, site_id, wired.content.pending_work(site_id)
        ).value.id
        run = await until_ended(wired, account_id, run_id)
    finally:
        await roles.stop()
    assert run.status.value == "failed"
    assert "overloaded" in run.error
    assert "after 3 attempt" in run.error
    # Each batch in flight when the run failed was tried exactly three times.
    assert provider.attempts % 3 == 0
    assert 3 <= provider.attempts <= 3 * wired.settings.batches_in_flight
    # Partial results stay; the stages after the failure made nothing.
    assert items(wired, "tasks", site_id)
    assert not items(wired, "content", site_id)
    # The site is free again and the unused reservation went back to the account.
    assert wired.app.balance(account_id) == balance_before - run.total_credits_used
    again = wired.app.start_run(account_id, site_id, wired.content.pending_work(site_id))
    assert again.value.status.value == "running"
