"""The local provider's text analysis: stemmed content words, similarity, and clustering.

Clustering is average-link agglomeration over stemmed token sets (Dice similarity, with
character trigrams as a tie-breaker). Deterministic: the same keywords in the same order
always give the same groups, which is what lets the estimate count stage 1 by a dry run.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections import Counter, defaultdict

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


def stable_hash(*parts: str) -> int:
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


def content_words(text: str) -> list[tuple[str, str]]:
    """(stem, surface word) of each content word, in order."""
    found = _WORD.findall(text.lower())
    return [(_stem(w), w) for w in found if w not in STOPWORDS and not w.isdigit()]


def trigrams(stems: list[str]) -> frozenset[str]:
    text = f"  {' '.join(stems)} "
    return frozenset(text[i : i + 3] for i in range(len(text) - 2))


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


def titled(text: str) -> str:
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in text.split())


def cluster_groups(tokens: list[frozenset[str]], grams: list[frozenset[str]]) -> list[list[int]]:
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


def group_name(keywords: list[str], group: list[int]) -> str:
    """The tokens most members share, in their usual order, in their usual surface form."""
    df: Counter[str] = Counter()
    surface: defaultdict[str, Counter[str]] = defaultdict(Counter)
    position: defaultdict[str, list[float]] = defaultdict(list)
    for i in group:
        words = content_words(keywords[i])
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


def topic_of(texts: list[str]) -> str:
    """What the texts are about: their most shared content words."""
    return group_name(texts, list(range(len(texts)))) if texts else ""
