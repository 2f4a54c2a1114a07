"""What each stage does with one batch: read its inputs, ask the AI, store the outputs.

Outputs get ids derived from (run, stage, batch, position), and the batch's receipt is
stored with them; a batch delivered twice finds its receipt and does nothing again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from automation.application.ai import AIError, AIProvider, AIResult, Article, Idea, Tokens
from automation.application.ports import BatchReceipt, PipelineStore

T = TypeVar("T")
_OUTPUT_NS = uuid5(NAMESPACE_URL, "automation:output")


class StageFailedError(Exception):
    """The AI kept failing for this batch: the run fails with this message."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep)

    def call(self, what: str, fn: Callable[..., AIResult[T]], *args: Any) -> AIResult[T]:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(*args)
            except AIError as error:
                if not error.retryable or attempt == self.attempts:
                    raise StageFailedError(
                        f"{what} failed after {attempt} attempt(s): {error}"
                    ) from error
                self.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
        raise AssertionError("unreachable")


def output_id(run_id: UUID, stage: int, batch: int, index: int) -> str:
    return str(uuid5(_OUTPUT_NS, f"{run_id}/{stage}/{batch}/{index}"))


class StageRunner:
    def __init__(self, store: PipelineStore, ai: AIProvider, retry: RetryPolicy) -> None:
        self.store = store
        self.ai = ai
        self.retry = retry
        # The tokens of the batch this thread is running (workers run batches side by side).
        self._metered = threading.local()

    def _call(self, what: str, fn: Callable[..., AIResult[T]], *args: Any) -> AIResult[T]:
        result = self.retry.call(what, fn, *args)
        if result.tokens is not None:
            self._metered.tokens.append(result.tokens)
        return result

    def run_batch(
        self,
        site_id: UUID,
        run_id: UUID,
        stage: int,
        batch: int,
        item_ids: list[str],
        at: datetime,
    ) -> BatchReceipt:
        done = self.store.receipt(run_id, stage, batch)
        if done is not None:
            return done
        inputs = self.store.stage_inputs(stage, item_ids)
        self._metered.tokens = []
        outputs, credits = self._produce(stage, inputs)
        for index, output in enumerate(outputs):
            output["id"] = output_id(run_id, stage, batch, index)
        tokens: list[Tokens] = self._metered.tokens
        receipt = BatchReceipt(
            len(inputs),
            len(outputs),
            credits,
            [o["id"] for o in outputs],
            len(tokens),
            sum(t.input for t in tokens),
            sum(t.output for t in tokens),
        )
        return self.store.commit_batch(
            site_id, run_id, stage, batch, item_ids, outputs, receipt, at
        )

    def _produce(
        self, stage: int, inputs: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int]:
        if stage == 1:
            return self._cluster(inputs)
        outputs: list[dict[str, Any]] = []
        credits = 0
        for item in inputs:
            made, cost = _PER_ITEM[stage](self, item)
            outputs += made
            credits += cost
        return outputs, credits

    def _cluster(self, keywords: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        texts = [k["keyword"] for k in keywords]
        result = self._call("clustering keywords", self.ai.cluster_keywords, texts)
        return [
            {
                "name": group.name,
                "keyword_ids": [keywords[m]["id"] for m in group.members],
                "keywords": [texts[m] for m in group.members],
            }
            for group in result.value
        ], result.credits

    def _ideas(self, cluster: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        result = self._call(
            f"ideas for {cluster['name']!r}",
            self.ai.generate_ideas,
            cluster["name"],
            cluster["keywords"],
        )
        return [
            {"cluster_id": cluster["id"], "title": idea.title, "description": idea.description}
            for idea in result.value
        ], result.credits

    def _task(self, idea: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        return [
            {
                "idea_id": idea["id"],
                "title": idea["title"],
                "description": idea["description"],
                "keywords": idea["keywords"],
            }
        ], 0

    def _article(self, task: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        idea = Idea(task["title"], task["description"])
        result = self._call(
            f"article {task['title']!r}", self.ai.write_article, idea, task["keywords"]
        )
        article = result.value
        return [
            {
                "task_id": task["id"],
                "title": article.title,
                "outline": article.outline,
                "body": article.body,
                "word_count": len(article.body.split()),
            }
        ], result.credits

    def _prompts(self, content: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        article = Article(content["title"], content["outline"], content["body"])
        result = self._call(
            f"image prompts for {content['title']!r}", self.ai.image_prompts, article
        )
        return [
            {"content_id": content["id"], "prompt": prompt} for prompt in result.value
        ], result.credits

    def _image(self, prompt: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        result = self._call("rendering an image", self.ai.render_image, prompt["prompt"])
        data = result.value
        if not data.lstrip().startswith(b"<svg"):
            raise StageFailedError("the image provider answered something other than SVG")
        return [
            {
                "content_id": prompt["content_id"],
                "image_prompt_id": prompt["id"],
                "media_type": "image/svg+xml",
                "data": data.decode(),
            }
        ], result.credits


_PER_ITEM: dict[int, Callable[[StageRunner, dict[str, Any]], tuple[list[dict[str, Any]], int]]]
_PER_ITEM = {
    2: StageRunner._ideas,
    3: StageRunner._task,
    4: StageRunner._article,
    5: StageRunner._prompts,
    6: StageRunner._image,
}
