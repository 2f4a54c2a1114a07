"""How many credits a run will use, from the work pending at each stage.

The model follows each stage's pending items down the pipeline with fixed yields
(how many outputs one input makes) and prices (credits per AI call), both listed
in docs/credits.md. Required credits are the estimate plus a 20% margin.
"""

from __future__ import annotations

from dataclasses import dataclass

# Outputs one input yields at each stage. Clusters cannot span stage-1 batches, so there
# are at least as many clusters as batches; beyond that, clusters per keyword is a measured
# ratio: the local provider made 34 to 37 clusters of the 230 sample keywords (imported by
# topic) at batch sizes from 15 up, and exactly one per batch at sizes up to 5.
CLUSTERS_PER_KEYWORD = (4, 25)
IDEAS_PER_CLUSTER = 2
IMAGE_PROMPTS_PER_CONTENT = 2

# Credits per AI call, per stage. Stage 3 and the review gate call no AI.
CREDITS_PER_KEYWORD_BATCH = 1  # stage 1: one call clusters one batch of keywords
CREDITS_PER_CLUSTER = 2  # stage 2: one call per cluster writes its ideas
CREDITS_PER_TASK = 10  # stage 4: one call per task writes an article
CREDITS_PER_CONTENT = 1  # stage 5: one call per article writes its image prompts
CREDITS_PER_IMAGE = 3  # stage 6: one call per prompt renders an image


@dataclass(frozen=True)
class PendingWork:
    """Items waiting at the entry of each AI stage (and of stage 3)."""

    keywords: int = 0
    clusters: int = 0
    ideas: int = 0
    tasks: int = 0
    content: int = 0
    image_prompts: int = 0


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def estimate_credits(pending: PendingWork, keyword_batch_size: int = 20) -> int:
    keyword_batches = _ceil_div(pending.keywords, max(1, keyword_batch_size))
    per_keyword, keywords = CLUSTERS_PER_KEYWORD
    new_clusters = max(keyword_batches, _ceil_div(pending.keywords * per_keyword, keywords))
    clusters = pending.clusters + new_clusters
    ideas = pending.ideas + clusters * IDEAS_PER_CLUSTER
    tasks = pending.tasks + ideas
    content = pending.content + tasks
    image_prompts = pending.image_prompts + content * IMAGE_PROMPTS_PER_CONTENT
    return (
        keyword_batches * CREDITS_PER_KEYWORD_BATCH
        + clusters * CREDITS_PER_CLUSTER
        + tasks * CREDITS_PER_TASK
        + content * CREDITS_PER_CONTENT
        + image_prompts * CREDITS_PER_IMAGE
    )


def required_credits(estimated: int) -> int:
    """ceil(estimated * 1.2), in whole numbers so no float rounding can creep in."""
    return (estimated * 6 + 4) // 5
