"""Request bodies. Unknown fields are refused; types are strict (no "5" for 5); text holds
no control characters or unpaired surrogates (``api/text.py``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from automation.api.text import Text, storable
from automation.domain.config import BATCH_SIZE_RANGE, DELAY_RANGE, HOURS_RANGE

_STRICT = ConfigDict(extra="forbid", strict=True)

BatchSize = Annotated[StrictInt, Field(ge=BATCH_SIZE_RANGE[0], le=BATCH_SIZE_RANGE[1])]
Delay = Annotated[StrictInt, Field(ge=DELAY_RANGE[0], le=DELAY_RANGE[1])]
Hours = Annotated[StrictInt, Field(ge=HOURS_RANGE[0], le=HOURS_RANGE[1])]


class SiteCreate(BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: Text = "UTC"

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return storable(value.strip())


class KeywordItem(BaseModel):
    model_config = _STRICT
    keyword: str  # checked with the list, after its whitespace is collapsed
    volume: Annotated[StrictInt, Field(ge=0, le=10**12)] | None = None


def _clean_keyword(value: str) -> str:
    text = " ".join(value.split())  # tabs and line breaks are whitespace, and collapse
    if not 1 <= len(text) <= 200:
        raise ValueError("each keyword must be 1 to 200 characters after trimming")
    return storable(text)


class KeywordsImport(BaseModel):
    model_config = _STRICT
    keywords: Annotated[list[str | KeywordItem], Field(min_length=1, max_length=10_000)]

    @field_validator("keywords")
    @classmethod
    def _valid_keywords(cls, items: list[str | KeywordItem]) -> list[str | KeywordItem]:
        cleaned: list[str | KeywordItem] = []
        for item in items:
            if isinstance(item, str):
                cleaned.append(_clean_keyword(item))
            else:
                cleaned.append(item.model_copy(update={"keyword": _clean_keyword(item.keyword)}))
        return cleaned


class ConfigUpdate(BaseModel):
    model_config = _STRICT
    is_enabled: StrictBool | None = None
    frequency: Text | None = None
    scheduled_time: Text | None = None
    scheduled_weekday: Annotated[StrictInt, Field(ge=0, le=6)] | None = None
    scheduled_day_of_month: Annotated[StrictInt, Field(ge=1, le=31)] | None = None
    timezone: Text | None = None
    stage_1_batch_size: BatchSize | None = None
    stage_2_batch_size: BatchSize | None = None
    stage_3_batch_size: BatchSize | None = None
    stage_4_batch_size: BatchSize | None = None
    stage_5_batch_size: BatchSize | None = None
    stage_6_batch_size: BatchSize | None = None
    within_stage_delay: Delay | None = None
    between_stage_delay: Delay | None = None
    max_paused_hours: Hours | None = None
    max_run_hours: Hours | None = None  # null: no limit

    def changes(self) -> dict[str, object]:
        """The fields the client sent. An explicit null is refused by the domain."""
        return {name: getattr(self, name) for name in self.model_fields_set}
