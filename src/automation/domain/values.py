"""Small immutable values shared by the aggregates."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Stage(IntEnum):
    """The seven stages of the pipeline, in order."""

    KEYWORDS_TO_CLUSTERS = 1
    CLUSTERS_TO_IDEAS = 2
    IDEAS_TO_TASKS = 3
    TASKS_TO_CONTENT = 4
    CONTENT_TO_IMAGE_PROMPTS = 5
    IMAGE_PROMPTS_TO_IMAGES = 6
    REVIEW_GATE = 7

    @property
    def title(self) -> str:
        return STAGE_NAMES[self]


STAGE_NAMES: dict[Stage, str] = {
    Stage.KEYWORDS_TO_CLUSTERS: "Keywords → Clusters",
    Stage.CLUSTERS_TO_IDEAS: "Clusters → Ideas",
    Stage.IDEAS_TO_TASKS: "Ideas → Tasks",
    Stage.TASKS_TO_CONTENT: "Tasks → Content",
    Stage.CONTENT_TO_IMAGE_PROMPTS: "Content → Image Prompts",
    Stage.IMAGE_PROMPTS_TO_IMAGES: "Image Prompts → Images",
    Stage.REVIEW_GATE: "Manual Review Gate",
}


class RunStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.PAUSED)


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"


class TriggerType(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
