"""The pipeline's two stacks and the helpers its tests share: a site with keywords, a run
waited on to its end, what it made and what it recorded, and the exactly-once check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest

from automation.application.ports import KeywordInput
from automation.bootstrap import Services, build
from automation.config import Settings

FAST = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "stage_1_batch_size": 10,
    "stage_2_batch_size": 3,
    "stage_4_batch_size": 4,
    "stage_5_batch_size": 4,
    "stage_6_batch_size": 6,
}
KEYWORDS = [
    "best trail shoes",
    "trail shoes for beginners",
    "waterproof trail shoes",
    "how to brew espresso",
    "espresso machine for home",
    "best espresso beans",
    "credit card debt relief",
    "pay off credit card debt",
    "budget app for couples",
    "free budget app",
    "sourdough starter recipe",
    "sourdough discard recipes",
]


@pytest.fixture(params=["embedded", "production"])
def stack(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    """SQLite with the in-process bus, or PostgreSQL with RabbitMQ."""
    if request.param == "embedded":
        return Settings(automation_data_dir=tmp_path / "var")
    settings: Settings = request.getfixturevalue("rabbit_settings")
    return settings


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    # The production stack's settings come from the PostgreSQL backend.
    return "postgres"


@pytest.fixture
async def wired(stack: Settings) -> AsyncIterator[Services]:
    services = build(stack)
    services.start_following()
    services.projector.start(poll_interval=0.2)
    yield services
    services.close()


def site_with_keywords(
    services: Services,
    keywords: list[str],
    credits: int = 1_000_000,
    config: dict[str, Any] | None = None,
) -> tuple[UUID, UUID]:
    app = services.app
    account_id, _ = app.open_account("Acme", credits)
    site_id = app.register_site(account_id, "Site", "UTC").value.id
    app.update_config(account_id, site_id, config or FAST)
    services.content.add_keywords(site_id, [KeywordInput(k) for k in keywords], app.clock.now())
    return account_id, site_id


async def until_ended(
    services: Services, account_id: UUID, run_id: UUID, limit: float = 120
) -> Any:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        run = services.app.run(account_id, run_id)
        if not run.is_active:
            return run
        assert asyncio.get_running_loop().time() < deadline, f"run stuck: {run.stages}"
        await asyncio.sleep(0.05)


def items(services: Services, kind: str, site_id: UUID) -> list[dict[str, Any]]:
    count, results = services.content.list_items(kind, site_id, None, 1000, 0)
    assert count == len(results)
    return results


def run_events(services: Services, run_id: UUID) -> list[Any]:
    return list(services.app.events.get(run_id))


class Crash(Exception):
    """The process dies here (the message is then delivered again)."""


def check_exactly_once(
    services: Services, account_id: UUID, site_id: UUID, run_id: UUID, balance_before: int
) -> None:
    run = services.app.run(account_id, run_id)
    assert run.status.value == "completed"
    events = run_events(services, run_id)
    completed = [e for e in events if type(e).__name__ == "BatchCompleted"]
    dispatched = [e for e in events if type(e).__name__ == "BatchDispatched"]
    assert len(completed) == len(dispatched)  # every batch recorded once
    assert len({(e.stage, e.batch) for e in completed}) == len(completed)
    # No output twice, none lost: each stage's outputs are exactly what its batches made.
    for stage, kind in [
        (1, "clusters"),
        (2, "ideas"),
        (3, "tasks"),
        (4, "content"),
        (5, "image_prompts"),
        (6, "images"),
    ]:
        made = sorted(i for e in completed if e.stage == stage for i in e.output_ids)
        assert sorted(i["id"] for i in items(services, kind, site_id)) == made, kind
    taken = sorted(i for e in dispatched if e.stage == 1 for i in e.item_ids)
    assert taken == sorted(k["id"] for k in items(services, "keywords", site_id))
    charged = balance_before - services.app.balance(account_id)
    consumed = sum(e.amount for e in events if type(e).__name__ == "CreditsConsumed")
    assert charged == consumed == run.total_credits_used
