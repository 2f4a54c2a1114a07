"""An offline, deterministic AI provider that does real (if modest) work with the stdlib.

Keywords are clustered by similarity (ai_local_text.py); ideas, articles and image prompts
come from templates chosen by hashing the input, and images are SVGs whose colours and
shapes derive from a hash (ai_local_templates.py). The same input always gives
byte-identical output: no randomness, clock, network or state.
"""

from __future__ import annotations

from fractions import Fraction

from automation.adapters.ai_local_templates import (
    HEADINGS,
    IDEAS,
    PARAGRAPHS,
    STYLES,
    render_svg,
    shuffle,
)
from automation.adapters.ai_local_text import (
    cluster_groups,
    content_words,
    group_name,
    stable_hash,
    titled,
    topic_of,
    trigrams,
)
from automation.application.ai import AIResult, Article, Idea, KeywordGroup, ProviderProfile
from automation.domain.estimate import PRIOR_RATES, PROVIDER, Rate


class LocalAIProvider:
    """An AIProvider that runs offline and deterministically, charging the estimate's prices."""

    name = "local"
    # Credits per call: clustering a batch, ideas for a cluster, an article, an article's
    # image prompts, an image.
    credits_per_keyword_batch = 1
    credits_per_cluster = 2
    credits_per_task = 10
    credits_per_content = 1
    credits_per_image = 3
    IDEAS_PER_CLUSTER = 2
    PROMPTS_PER_ARTICLE = 2

    def describe(self) -> ProviderProfile:
        """Exact figures: every call's price is fixed, every stage but clustering makes a
        fixed number of outputs, and clustering is cheap enough to count by a dry run."""
        per_call = (
            self.credits_per_keyword_batch,
            self.credits_per_cluster,
            0,
            self.credits_per_task,
            self.credits_per_content,
            self.credits_per_image,
        )
        yields = (PRIOR_RATES[1].yield_, self.IDEAS_PER_CLUSTER, 1, 1, self.PROMPTS_PER_ARTICLE, 1)
        rates = {
            stage: Rate(Fraction(yields[stage - 1]), Fraction(per_call[stage - 1]), PROVIDER)
            for stage in range(1, 7)
        }
        return ProviderProfile(self.name, dry_run=True, rates=rates)

    def cluster_keywords(self, keywords: list[str]) -> AIResult[list[KeywordGroup]]:
        stems = [[stem for stem, _ in content_words(k)] for k in keywords]
        groups = cluster_groups([frozenset(s) for s in stems], [trigrams(s) for s in stems])
        value = [KeywordGroup(name=group_name(keywords, g), members=g) for g in groups]
        return AIResult(value, self.credits_per_keyword_batch)

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        kws = [" ".join(k.split()) for k in keywords if k.strip()]
        topic = " ".join(cluster.split()) or topic_of(kws) or "this topic"
        seed = stable_hash("ideas", topic, *kws)
        kws = kws or [topic]
        ideas = []
        for j in range(self.IDEAS_PER_CLUSTER):
            title, desc = IDEAS[(seed + j * (1 + seed % 5)) % len(IDEAS)].split("|")
            picked = [f'"{kws[(seed // 7 + j + m) % len(kws)]}"' for m in range(min(3, len(kws)))]
            slots = {"T": titled(topic), "t": topic, "n": str(5 + (seed >> 8) % 6)}
            ideas.append(Idea(title.format(**slots), desc.format(k=", ".join(picked), **slots)))
        return AIResult(ideas, self.credits_per_cluster)

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        kws = [" ".join(k.split()) for k in keywords if k.strip()]
        topic = topic_of(kws) or topic_of([idea.title]) or "the topic"
        seed = stable_hash("article", idea.title, idea.description, *kws)
        kws = kws or [topic]
        count = 5 + seed % 3
        outline = [HEADINGS[i].format(T=titled(topic)) for i in shuffle(11, seed)[:count]]
        paragraphs = [2 + (seed >> (s + 4)) % 2 for s in range(count)]  # per section

        def render() -> str:
            out = [f"# {idea.title}", "", f"{idea.description} This article looks at {topic} "
                   "from several angles, so you can act with confidence.", ""]  # fmt: skip
            n = 0
            for s, heading in enumerate(outline):
                out += [f"## {heading}", ""]
                for p in shuffle(len(PARAGRAPHS), seed + s)[: paragraphs[s]]:
                    out += [PARAGRAPHS[p].format(k=kws[n % len(kws)], t=topic), ""]
                    n += 1
            out += ["## Conclusion", "", f"{titled(topic)} rewards a steady, informed approach. "
                    f'Keep "{kws[0]}" in mind, revisit the sections above when in doubt, and '
                    "build on what works for you.", ""]  # fmt: skip
            return "\n".join(out)

        body = render()
        while len(body.split()) < 400 and min(paragraphs) < 4:
            paragraphs[paragraphs.index(min(paragraphs))] += 1
            body = render()
        while len(body.split()) > 900 and max(paragraphs) > 1:
            paragraphs[paragraphs.index(max(paragraphs))] -= 1
            body = render()
        return AIResult(Article(idea.title, outline, body), self.credits_per_task)

    def image_prompts(self, article: Article) -> AIResult[list[str]]:
        seed = stable_hash("prompts", article.title, *article.outline)
        hero = f"Hero image for '{article.title}': {STYLES[seed % len(STYLES)]}, wide 1200x630"
        section = article.outline[(seed >> 4) % len(article.outline)] if article.outline else ""
        style = STYLES[(seed >> 8) % len(STYLES)]
        scene = section or article.title
        illustration = f"In-article illustration of '{scene}' for '{article.title}': {style}"
        return AIResult([hero, illustration], self.credits_per_content)

    def render_image(self, prompt: str) -> AIResult[bytes]:
        return AIResult(render_svg(prompt), self.credits_per_image)


class ZeroCostAIProvider(LocalAIProvider):
    """The local provider with every call free: for benchmarks, where credits are noise."""

    name = "local-zero-cost"
    credits_per_keyword_batch = 0
    credits_per_cluster = 0
    credits_per_task = 0
    credits_per_content = 0
    credits_per_image = 0
