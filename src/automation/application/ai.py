"""The AI port: what the pipeline's stages ask of an AI provider, and what it costs.

Every call answers its value and the credits it cost; the stage records the credits
as an event of its stage, so the customer is charged for exactly the AI work done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from automation.domain.estimate import Rate
from automation.domain.pricing import TokenPrice

T = TypeVar("T")


@dataclass(frozen=True)
class Tokens:
    """The tokens a call to a real model used, as its server reported them."""

    input: int
    output: int


@dataclass(frozen=True)
class AIResult(Generic[T]):
    value: T
    credits: int
    tokens: Tokens | None = None


@dataclass(frozen=True)
class ProviderProfile:
    """What the estimate may know of a provider before a run.

    ``dry_run``: ``cluster_keywords`` is offline, free and deterministic, so the estimate
    may call it to count stage 1's clusters exactly. ``rates``: the provider's own yields
    and credits per call, per stage, when it knows them. ``price``: credits per 1,000
    tokens, for a model charged by tokens (its yields and tokens are then learned)."""

    name: str
    dry_run: bool = False
    rates: Mapping[int, Rate] | None = None
    price: TokenPrice | None = None


@dataclass(frozen=True)
class KeywordGroup:
    """A cluster of keywords: its name and the positions of its members in the input."""

    name: str
    members: list[int]


@dataclass(frozen=True)
class Idea:
    title: str
    description: str


@dataclass(frozen=True)
class Article:
    title: str
    outline: list[str]
    body: str


class AIError(Exception):
    """A provider call failed. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class AIProvider(Protocol):
    """Stages 1, 2, 4, 5 and 6 call these; stage 3 and the review gate call none."""

    name: str

    def describe(self) -> ProviderProfile:
        """What the estimate may know of this provider's yields and prices."""
        ...

    def cluster_keywords(self, keywords: list[str]) -> AIResult[list[KeywordGroup]]:
        """Group keywords by meaning. Every input position is in exactly one group."""
        ...

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        """One or more article ideas for a cluster."""
        ...

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        """A structured article of several hundred words."""
        ...

    def image_prompts(self, article: Article) -> AIResult[list[str]]:
        """One or more prompts for images that illustrate the article."""
        ...

    def render_image(self, prompt: str) -> AIResult[bytes]:
        """An image for the prompt, as SVG or PNG bytes."""
        ...
