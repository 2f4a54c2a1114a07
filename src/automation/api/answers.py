"""The shapes of the API's answers, for the OpenAPI document.

The routes build their answers as plain dicts (or serve a read model's stored JSON) and
serialize them with orjson, so these models are never run on a request: they only say, in
the document, what each answer holds (``responses={200: {"model": ...}}`` on a route).
``tests/e2e/test_api_schema.py`` checks every answer it gets against them, so the document
cannot drift from what is served. Fields may be added to an answer (the contract grows);
none listed here may go.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Id = str  # a UUID, as a string
Time = str  # ISO 8601 in UTC, with a Z suffix


class Site(BaseModel):
    site_id: Id
    name: str
    timezone: str
    created_at: Time


class Sites(BaseModel):
    results: list[Site]


class KeywordsImported(BaseModel):
    created: int
    duplicates: int


class Keyword(BaseModel):
    id: Id
    keyword: str
    volume: int | None
    status: str
    cluster_id: Id | None
    created_at: Time


class Cluster(BaseModel):
    id: Id
    name: str
    keyword_ids: list[Id]
    keywords: list[str]
    status: str
    created_at: Time


class Idea(BaseModel):
    id: Id
    cluster_id: Id
    title: str
    description: str
    status: str
    created_at: Time


class Task(BaseModel):
    id: Id
    idea_id: Id
    title: str
    status: str
    created_at: Time


class ContentSummary(BaseModel):
    id: Id
    task_id: Id
    title: str
    word_count: int
    status: str
    created_at: Time


class Content(ContentSummary):
    outline: list[str]
    body: str
    image_ids: list[Id]


class ImagePrompt(BaseModel):
    id: Id
    content_id: Id
    prompt: str
    status: str
    created_at: Time


class Image(BaseModel):
    id: Id
    content_id: Id
    image_prompt_id: Id
    media_type: str
    status: str
    created_at: Time


class Keywords(BaseModel):
    count: int
    results: list[Keyword]


class Clusters(BaseModel):
    count: int
    results: list[Cluster]


class Ideas(BaseModel):
    count: int
    results: list[Idea]


class Tasks(BaseModel):
    count: int
    results: list[Task]


class Contents(BaseModel):
    count: int
    results: list[ContentSummary]


class ImagePrompts(BaseModel):
    count: int
    results: list[ImagePrompt]


class Images(BaseModel):
    count: int
    results: list[Image]


LISTINGS: dict[str, type[BaseModel]] = {
    "keywords": Keywords,
    "clusters": Clusters,
    "ideas": Ideas,
    "tasks": Tasks,
    "content": Contents,
    "image_prompts": ImagePrompts,
    "images": Images,
}


class Config(BaseModel):
    site_id: Id
    is_enabled: bool
    frequency: str = Field(description='"daily", "weekly" or "monthly"')
    scheduled_time: str = Field(description='"HH:MM" in the site\'s timezone')
    scheduled_weekday: int
    scheduled_day_of_month: int
    stage_1_batch_size: int
    stage_2_batch_size: int
    stage_3_batch_size: int
    stage_4_batch_size: int
    stage_5_batch_size: int
    stage_6_batch_size: int
    within_stage_delay: int
    between_stage_delay: int
    max_paused_hours: int
    max_run_hours: int | None
    timezone: str
    last_run_at: Time | None
    next_run_at: Time | None
    last_scheduled_slot: Time | None


class RunStatus(BaseModel):
    run_id: Id
    status: str


class EstimatedStage(BaseModel):
    stage: int
    name: str
    items: int
    yield_: float = Field(alias="yield")
    outputs: int
    calls: int
    credits_per_call: float
    credits: int
    source: str  # dry_run, provider, learned or prior


class EstimateBasis(BaseModel):
    provider: str
    stages: list[EstimatedStage]


class Estimate(BaseModel):
    estimated_credits: int
    required_credits: int
    current_balance: int
    sufficient: bool
    basis: EstimateBasis


class StageResult(BaseModel):
    stage: int
    name: str
    status: str
    processed: int
    created: int
    credits_used: int
    started_at: Time | None
    completed_at: Time | None


class BatchInFlight(BaseModel):
    stage: int
    batch: int
    item_ids: list[str]


class Run(BaseModel):
    run_id: Id
    site_id: Id
    status: str
    trigger_type: str
    current_stage: int
    started_at: Time
    paused_at: Time | None
    # "requested" or "awaiting_credits" while paused; absent from runs folded before.
    pause_reason: str | None = None
    resumed_at: Time | None
    completed_at: Time | None
    total_credits_used: int
    estimated_credits: int
    reserved_credits: int
    error: str | None
    batches: list[BatchInFlight] = Field(default_factory=list)
    stages: list[StageResult]


class CurrentRun(BaseModel):
    run: Run | None


class PastRun(BaseModel):
    run_id: Id
    status: str
    trigger_type: str
    started_at: Time
    completed_at: Time | None
    total_credits_used: int
    # Absent from entries written before runs were listed with their estimate.
    estimated_credits: int | None = None
    current_stage: int
    pause_reason: str | None = None
    # Absent from entries written before runs were listed with these.
    paused_at: Time | None = None
    resumed_at: Time | None = None
    processed: int | None = None
    created: int | None = None


class History(BaseModel):
    runs: list[PastRun]
    # Only when asked with paging or filters: the cursor of the next page, null on the last.
    next_cursor: str | None = None


class RunPage(BaseModel):
    runs: list[PastRun]
    next_cursor: str | None


class Slot(BaseModel):
    slot: str
    fire_at: Time
    outcome: str  # started, skipped or missed
    reason: str | None
    run_id: Id | None
    handled_at: Time


class SlotPage(BaseModel):
    slots: list[Slot]
    next_cursor: str | None


class Logs(BaseModel):
    run_id: Id
    lines: list[str]


class StageCounts(BaseModel):
    stage: int
    name: str
    pending: int
    done: int


class PipelineOverview(BaseModel):
    stages: list[StageCounts]


class ItemTitle(BaseModel):
    id: Id
    title: str


class Processing(BaseModel):
    run_id: Id
    status: str
    stage: int
    stage_name: str
    processed: int
    total: int
    percent: float
    current_items: list[ItemTitle]
    up_next: list[ItemTitle]
    eta_seconds: float | None


class CurrentProcessing(BaseModel):
    processing: Processing | None


class FireTime(BaseModel):
    local: str
    utc: Time


class SchedulePreview(BaseModel):
    site_id: Id
    timezone: str
    fire_times: list[FireTime]


class StoredEvent(BaseModel):
    id: Id
    version: int
    type: str
    schema_version: int
    timestamp: Time
    data: dict[str, Any]
    chain: str


class RunEvents(BaseModel):
    run_id: Id
    events: list[StoredEvent]


class RunState(BaseModel):
    run_id: Id
    version: int
    run: Run


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, dict[str, Any]] = Field(
        description="per backing part (store, projections, bus): ok, and what was seen"
    )


def ok(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses`` entry documenting its answer as ``model``."""
    return {status: {"model": model}}
