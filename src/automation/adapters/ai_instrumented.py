"""The AI provider port, measured: each call counted and timed by provider and outcome,
and a span per call when tracing is on (tracing.py).

Wraps whichever provider the settings pick, for the stage runner only: the estimate's dry
runs call the provider unwrapped (``inner``), so the metrics count the work runs pay for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from automation import tracing
from automation.adapters.run_metrics import AI_CALLS, AI_SECONDS
from automation.application.ai import (
    AIError,
    AIProvider,
    AIResult,
    Article,
    Idea,
    KeywordGroup,
    ProviderProfile,
)

T = TypeVar("T")


class InstrumentedAI:
    """An ``AIProvider`` that counts and times every call of the one it wraps."""

    def __init__(self, inner: AIProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self._seconds = AI_SECONDS.labels(inner.name)

    def _measured(self, call: Callable[[], AIResult[T]], name: str = "call") -> AIResult[T]:
        started = time.perf_counter()
        outcome = "error"
        try:
            with tracing.span(f"ai {name}", {"automation.ai.provider": self.name}):
                result = call()
            outcome = "ok"
            return result
        except AIError as error:
            outcome = "retryable_error" if error.retryable else "failed"
            raise
        finally:
            self._seconds.observe(time.perf_counter() - started)
            AI_CALLS.labels(self.name, outcome).inc()

    def describe(self) -> ProviderProfile:
        return self.inner.describe()

    def cluster_keywords(self, keywords: list[str]) -> AIResult[list[KeywordGroup]]:
        return self._measured(lambda: self.inner.cluster_keywords(keywords), "cluster_keywords")

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        return self._measured(
            lambda: self.inner.generate_ideas(cluster, keywords), "generate_ideas"
        )

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        return self._measured(lambda: self.inner.write_article(idea, keywords), "write_article")

    def image_prompts(self, article: Article) -> AIResult[list[str]]:
        return self._measured(lambda: self.inner.image_prompts(article), "image_prompts")

    def render_image(self, prompt: str) -> AIResult[bytes]:
        return self._measured(lambda: self.inner.render_image(prompt), "render_image")
