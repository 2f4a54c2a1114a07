"""Building the pipeline's parts from settings: the AI provider and the stage runner."""

from __future__ import annotations

from automation.adapters.ai_instrumented import InstrumentedAI
from automation.adapters.ai_local import LocalAIProvider, ZeroCostAIProvider
from automation.adapters.ai_openai import OpenAICompatibleProvider
from automation.application.ai import AIProvider
from automation.application.ports import PipelineStore
from automation.application.stages import RetryPolicy, StageRunner
from automation.config import Settings
from automation.domain.pricing import TokenPrice


def ai_provider(settings: Settings) -> AIProvider:
    if settings.ai_provider == "openai":
        model = settings.openai_model
        price = settings.openai_prices.get(model, settings.openai_default_price)
        return OpenAICompatibleProvider(
            settings.openai_base_url,
            settings.openai_api_key,
            model,
            price=TokenPrice(price.input, price.output),
        )
    if settings.ai_provider == "free":
        return ZeroCostAIProvider()
    if settings.ai_provider == "local":
        return LocalAIProvider()
    raise ValueError(f"unknown AUTOMATION_AI_PROVIDER {settings.ai_provider!r}")


def stage_runner(settings: Settings, store: PipelineStore) -> StageRunner:
    return StageRunner(
        store,
        InstrumentedAI(ai_provider(settings)),
        RetryPolicy(settings.ai_attempts, settings.ai_backoff),
    )
