"""An offline, deterministic AI provider that does real (if modest) work with the stdlib.

Clustering is average-link agglomeration over stemmed token sets (Dice similarity, with
character trigrams as a tie-breaker); ideas, articles and image prompts come from templates
chosen by hashing the input; images are SVGs whose colours and shapes derive from a hash.
The same input always gives byte-identical output: no randomness, clock, network or state.
"""

from __future__ import annotations

import colorsys
import hashlib
import heapq
import html
import re
import textwrap
from collections import Counter, defaultdict

from automation.application.ai import AIResult, Article, Idea, KeywordGroup
from automation.domain import estimate

# Function words plus the generic modifiers of search queries, which say nothing of topic.
_STOPWORD_TEXT = (
    "a an the and or but for of to in on at by with without from into about over under is "
    "are was be been do does did can could should would will my your our their his her its "
    "it this that these those i me we you they how what which why when where who whom vs "
    "versus best top good great cheap cheapest near new free online buy guide tips ideas "
    "review reviews list most more than"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
SIMILARITY_THRESHOLD = 0.3  # least average-link similarity at which two groups merge
SINGLETON_THRESHOLD = 0.2  # a lone keyword joins its nearest group from this similarity
MAX_GROUP_SIZE = 8  # larger groups dilute the two ideas a cluster yields

_WORD = re.compile(r"[^\W_]+")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _hash(*parts: str) -> int:
    data = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _stem(word: str) -> str:
    """Light stemming: plural -s/-es/-ies and -ing, so "shoes"/"shoe", "brewing"/"brew"."""
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
        if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]  # running -> runn -> run
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes")) or (len(word) > 6 and word.endswith("oes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[tuple[str, str]]:
    """(stem, surface word) of each content word, in order."""
    found = _WORD.findall(text.lower())
    return [(_stem(w), w) for w in found if w not in STOPWORDS and not w.isdigit()]


def _trigrams(stems: list[str]) -> frozenset[str]:
    text = f"  {' '.join(stems)} "
    return frozenset(text[i : i + 3] for i in range(len(text) - 2))


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


def _title(text: str) -> str:
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in text.split())


def _cluster(tokens: list[frozenset[str]], grams: list[frozenset[str]]) -> list[list[int]]:
    """Average-link agglomeration; only pairs sharing a token have a nonzero similarity."""
    n = len(tokens)
    by_token: defaultdict[str, list[int]] = defaultdict(list)
    for i, toks in enumerate(tokens):
        for tok in sorted(toks):
            by_token[tok].append(i)
    links: dict[int, dict[int, float]] = {i: {} for i in range(n)}
    for idxs in by_token.values():
        for x, a in enumerate(idxs):
            for b in idxs[x + 1 :]:
                if b not in links[a]:
                    sim = 0.9 * _dice(tokens[a], tokens[b]) + 0.1 * _dice(grams[a], grams[b])
                    links[a][b] = links[b][a] = sim
    members = {i: [i] for i in range(n)}
    heap = [(-s, a, b) for a in range(n) for b, s in links[a].items() if a < b]
    heapq.heapify(heap)
    while heap:
        neg, a, b = heapq.heappop(heap)
        if -neg < SINGLETON_THRESHOLD:
            break
        if a not in members or b not in members:
            continue
        if -neg < SIMILARITY_THRESHOLD and min(len(members[a]), len(members[b])) > 1:
            continue
        if links[a][b] / (len(members[a]) * len(members[b])) != -neg:
            continue  # stale: a newer entry for this pair was pushed
        if len(members[a]) + len(members[b]) > MAX_GROUP_SIZE:
            continue
        members[a] += members.pop(b)
        del links[a][b]
        for c, s in links.pop(b).items():
            if c != a:
                del links[c][b]
                links[a][c] = links[c][a] = links[a].get(c, 0.0) + s
        for c, s in links[a].items():
            avg = s / (len(members[a]) * len(members[c]))
            heapq.heappush(heap, (-avg, min(a, c), max(a, c)))
    return sorted(sorted(group) for group in members.values())


def _group_name(keywords: list[str], group: list[int]) -> str:
    """The tokens most members share, in their usual order, in their usual surface form."""
    df: Counter[str] = Counter()
    surface: defaultdict[str, Counter[str]] = defaultdict(Counter)
    position: defaultdict[str, list[float]] = defaultdict(list)
    for i in group:
        words = _words(keywords[i])
        for pos, (stem, word) in enumerate(words):
            surface[stem][word] += 1
            position[stem].append(pos / max(1, len(words) - 1))
        df.update({stem for stem, _ in words})
    if not df:
        return " ".join(keywords[group[0]].split()) or "untitled"
    ranked = sorted(df, key=lambda s: (-df[s], s))
    shared = [s for s in ranked if df[s] * 2 >= len(group) and (df[s] > 1 or len(group) == 1)]
    top = shared[:3] or ranked[:2]
    top.sort(key=lambda s: (sum(position[s]) / len(position[s]), s))
    return " ".join(min(surface[s], key=lambda w: (-surface[s][w], w)) for s in top)


def _topic(texts: list[str]) -> str:
    """What the texts are about: their most shared content words."""
    return _group_name(texts, list(range(len(texts)))) if texts else ""


def _shuffle(n: int, seed: int) -> list[int]:
    """A deterministic permutation of range(n) keyed by the seed."""
    return sorted(range(n), key=lambda i: _hash(str(seed), str(i)))


# Idea templates: "title|description"; {T} titled topic, {t} topic, {k} keywords, {n} a number.
_IDEAS = [
    "The Complete Guide to {T}|Everything a reader needs about {t}: what it is, why it matters "
    "and how to get it right, covering {k}.",
    "{T}: {n} Mistakes to Avoid|A practical list of the errors people make with {t}, each with "
    "a fix, drawing on searches such as {k}.",
    "How to Choose the Right {T}|A buyer-minded walkthrough that compares the options for {t} "
    "and explains which fits whom, answering {k}.",
    "{T} for Beginners: Where to Start|A friendly first step into {t} for newcomers, with clear "
    "definitions and a simple plan, built around {k}.",
    "{n} Expert Tips for Better {T}|Field-tested advice on {t} from people who practise it every "
    "day, organised so readers can act at once on {k}.",
    "{T} Explained: Myths and Facts|This piece separates evidence from folklore about {t} and "
    "shows what really works, touching on {k}.",
]
_HEADINGS = [
    "What {T} Really Means", "Why {T} Matters", "Getting Started with {T}",
    "Choosing the Right Approach to {T}", "Common Mistakes with {T}", "Advanced Tips for {T}",
    "Step by Step: {T} in Practice", "Tools and Resources for {T}", "Comparing Options for {T}",
    "Measuring Success with {T}", "Costs and Budgeting for {T}",
]  # fmt: skip
# Section paragraphs; {k} is a keyword woven in, {t} the topic.
_PARAGRAPHS = [
    'When people search for "{k}", they usually want a clear answer they can trust. With {t}, '
    "that means starting from the basics and building up, so every choice you make has a "
    "reason behind it and nothing is left to chance.",
    'A useful way to think about "{k}" is as a series of small decisions. Each one is easy on '
    "its own, but together they shape the result, which is why this part of {t} deserves "
    "careful and patient attention.",
    'Experienced practitioners point out that "{k}" rarely stands alone. It connects to '
    "everything else covered in this guide to {t}, and small improvements made here tend to "
    "compound over the following weeks.",
    'Consider a simple example: someone new to "{k}" tries the most popular option first. '
    "Often that works, but the details of {t} explain when a different path is wiser and "
    "which warning signs to watch for along the way.",
    'There is no single right answer to "{k}". Budget, experience and goals all matter, so '
    "treat the points in this section as a checklist rather than a rulebook, and adapt them "
    "to your own situation with {t}.",
    'Keep notes as you go. Recording what you tried for "{k}", and what changed as a result, '
    "turns guesswork into knowledge and makes every later step with {t} faster, cheaper and "
    "noticeably more reliable.",
]
_STYLES = [
    "flat vector illustration, soft pastel palette", "cinematic photograph, golden hour light",
    "isometric 3D render, clean studio background", "minimal line art, bold accent colour",
    "editorial watercolour, textured paper",
]  # fmt: skip


class LocalAIProvider:
    """An AIProvider that runs offline and deterministically, charging the estimate's prices."""

    name = "local"
    credits_per_keyword_batch = estimate.CREDITS_PER_KEYWORD_BATCH
    credits_per_cluster = estimate.CREDITS_PER_CLUSTER
    credits_per_task = estimate.CREDITS_PER_TASK
    credits_per_content = estimate.CREDITS_PER_CONTENT
    credits_per_image = estimate.CREDITS_PER_IMAGE

    def cluster_keywords(self, keywords: list[str]) -> AIResult[list[KeywordGroup]]:
        stems = [[stem for stem, _ in _words(k)] for k in keywords]
        groups = _cluster([frozenset(s) for s in stems], [_trigrams(s) for s in stems])
        value = [KeywordGroup(name=_group_name(keywords, g), members=g) for g in groups]
        return AIResult(value, self.credits_per_keyword_batch)

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        kws = [" ".join(k.split()) for k in keywords if k.strip()]
        topic = " ".join(cluster.split()) or _topic(kws) or "this topic"
        seed = _hash("ideas", topic, *kws)
        kws = kws or [topic]
        ideas = []
        for j in range(2):
            title, desc = _IDEAS[(seed + j * (1 + seed % 5)) % len(_IDEAS)].split("|")
            picked = [f'"{kws[(seed // 7 + j + m) % len(kws)]}"' for m in range(min(3, len(kws)))]
            slots = {"T": _title(topic), "t": topic, "n": str(5 + (seed >> 8) % 6)}
            ideas.append(Idea(title.format(**slots), desc.format(k=", ".join(picked), **slots)))
        return AIResult(ideas, self.credits_per_cluster)

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        kws = [" ".join(k.split()) for k in keywords if k.strip()]
        topic = _topic(kws) or _topic([idea.title]) or "the topic"
        seed = _hash("article", idea.title, idea.description, *kws)
        kws = kws or [topic]
        count = 5 + seed % 3
        outline = [_HEADINGS[i].format(T=_title(topic)) for i in _shuffle(11, seed)[:count]]
        paragraphs = [2 + (seed >> (s + 4)) % 2 for s in range(count)]  # per section

        def render() -> str:
            out = [f"# {idea.title}", "", f"{idea.description} This article looks at {topic} "
                   "from several angles, so you can act with confidence.", ""]  # fmt: skip
            n = 0
            for s, heading in enumerate(outline):
                out += [f"## {heading}", ""]
                for p in _shuffle(len(_PARAGRAPHS), seed + s)[: paragraphs[s]]:
                    out += [_PARAGRAPHS[p].format(k=kws[n % len(kws)], t=topic), ""]
                    n += 1
            out += ["## Conclusion", "", f"{_title(topic)} rewards a steady, informed approach. "
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
        seed = _hash("prompts", article.title, *article.outline)
        hero = f"Hero image for '{article.title}': {_STYLES[seed % len(_STYLES)]}, wide 1200x630"
        section = article.outline[(seed >> 4) % len(article.outline)] if article.outline else ""
        style = _STYLES[(seed >> 8) % len(_STYLES)]
        scene = section or article.title
        illustration = f"In-article illustration of '{scene}' for '{article.title}': {style}"
        return AIResult([hero, illustration], self.credits_per_content)

    def render_image(self, prompt: str) -> AIResult[bytes]:
        digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()

        def colour(i: int, light: float) -> str:
            r, g, b = colorsys.hls_to_rgb(digest[i] / 255, light, 0.55 + digest[i + 1] / 600)
            return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"

        shapes = []
        for s in range(4):
            x, y, size = digest[8 + 3 * s] * 1200 // 255, digest[9 + 3 * s] * 630 // 255, 40
            size += digest[10 + 3 * s] % 160
            fill, shape = colour(20 + s, 0.7), ("circle", "rect")[digest[s] % 2]
            shapes.append(
                f'<circle cx="{x}" cy="{y}" r="{size}" fill="{fill}" fill-opacity="0.45"/>'
                if shape == "circle"
                else f'<rect x="{x - size}" y="{y - size // 2}" width="{2 * size}" '
                f'height="{size}" rx="12" fill="{fill}" fill-opacity="0.4"/>'
            )
        lines = textwrap.wrap(_NOT_XML.sub("", " ".join(prompt.split()[:12])), 34)[:3] or [""]
        text = "".join(
            f'<tspan x="80" dy="{0 if i == 0 else 64}">{html.escape(line)}</tspan>'
            for i, line in enumerate(lines)
        )
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630" '
            'viewBox="0 0 1200 630">'
            '<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">'
            f'<stop offset="0" stop-color="{colour(0, 0.35)}"/>'
            f'<stop offset="1" stop-color="{colour(2, 0.55)}"/></linearGradient></defs>'
            '<rect width="1200" height="630" fill="url(#bg)"/>'
            f"{''.join(shapes)}"
            '<text x="80" y="300" font-family="sans-serif" font-size="52" fill="#ffffff" '
            f'font-weight="bold">{text}</text></svg>'
        )
        return AIResult(svg.encode(), self.credits_per_image)


class ZeroCostAIProvider(LocalAIProvider):
    """The local provider with every call free: for benchmarks, where credits are noise."""

    name = "local-zero-cost"
    credits_per_keyword_batch = 0
    credits_per_cluster = 0
    credits_per_task = 0
    credits_per_content = 0
    credits_per_image = 0
