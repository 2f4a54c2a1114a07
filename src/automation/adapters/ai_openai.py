"""The AI port over an OpenAI-compatible chat-completions HTTP API.

Every call is one ``POST {base_url}/chat/completions`` asking for a JSON object of a
documented shape, which is validated strictly. 429, 5xx, timeouts, connection errors and
invalid answers are retried with exponential backoff; any other 4xx fails at once.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from automation.application.ai import (
    AIError,
    AIResult,
    Article,
    Idea,
    KeywordGroup,
    ProviderProfile,
    Tokens,
)
from automation.domain.pricing import TokenPrice, call_credits

T = TypeVar("T")

MAX_DELAY = 8.0
# Credits per 1,000 tokens of a model with no price of its own in the settings.
DEFAULT_PRICE = TokenPrice(input=1, output=1)

_CLUSTER = (
    "You group SEO keywords by meaning. The user gives a numbered keyword list. Answer only "
    'a JSON object {"clusters": [{"name": str, "members": [int, ...]}]} where members are '
    "the numbers of the keywords in that cluster; put every number in exactly one cluster."
)
_IDEAS = (
    "You propose blog article ideas for a keyword cluster. Answer only a JSON object "
    '{"ideas": [{"title": str, "description": str}]} with at least one idea.'
)
_ARTICLE = (
    "You write a structured blog article of several hundred words. Answer only a JSON "
    'object {"title": str, "outline": [str], "body": str}; the body is Markdown.'
)
_PROMPTS = (
    "You write prompts for images that illustrate an article. Answer only a JSON object "
    '{"prompts": [str]} with at least one prompt.'
)
_SVG = (
    "You draw illustrations as SVG. Answer only a JSON object "
    '{"svg": "<svg ...>...</svg>"} holding one self-contained SVG document with a viewBox, '
    "no scripts and no external references."
)


class _Invalid(Exception):
    """The model's answer is not of the shape asked for."""


KEPT_CONTROLS = frozenset("\n\t")


def _printable(value: Any) -> Any:
    """The answer without control characters but line breaks and tabs: a model may emit a
    NUL or an escape, which is noise in content and which PostgreSQL cannot store in text."""
    if isinstance(value, str):
        return "".join(c for c in value if c in KEPT_CONTROLS or unicodedata.category(c) != "Cc")
    if isinstance(value, list):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    return value


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{key!r} is not a non-empty string")
    return value


def _items(obj: dict[str, Any], key: str, *, non_empty: bool = True) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list) or (non_empty and not value):
        raise _Invalid(f"{key!r} is not a {'non-empty ' if non_empty else ''}list")
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} is not an object")
    return value


def _strings(obj: dict[str, Any], key: str, *, non_empty: bool = True) -> list[str]:
    values = _items(obj, key, non_empty=non_empty)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise _Invalid(f"{key!r} holds something other than non-empty strings")
    return [str(v) for v in values]


def repair_clusters(keywords: list[str], answer: dict[str, Any]) -> list[KeywordGroup]:
    """Groups in which every input position is in exactly one group.

    Out-of-range and repeated positions are dropped (a position stays in the first group
    naming it), positions no group names get a singleton group named after the keyword,
    and groups left empty are dropped.
    """
    seen: set[int] = set()
    groups: list[KeywordGroup] = []
    for raw in _items(answer, "clusters", non_empty=False):
        cluster = _obj(raw, "a cluster")
        name = _text(cluster, "name")
        members: list[int] = []
        for m in _items(cluster, "members", non_empty=False):
            if not isinstance(m, int) or isinstance(m, bool):
                raise _Invalid("a cluster member is not an integer")
            if 0 <= m < len(keywords) and m not in seen:
                seen.add(m)
                members.append(m)
        if members:
            groups.append(KeywordGroup(name=name, members=members))
    groups += [KeywordGroup(keywords[i], [i]) for i in range(len(keywords)) if i not in seen]
    return groups


def _svg(answer: dict[str, Any]) -> bytes:
    svg = _text(answer, "svg").strip()
    if not svg.startswith("<svg") or not svg.endswith("</svg>"):
        raise _Invalid("'svg' is not an <svg>...</svg> document")
    return svg.encode("utf-8")


class OpenAICompatibleProvider:
    """An :class:`~automation.application.ai.AIProvider` over an OpenAI-compatible API.

    ``base_url`` includes the API version (``https://api.openai.com/v1``). A call costs its
    tokens at ``price`` (credits per 1,000 input and output tokens), rounded up, at least 1,
    and 1 when the server reports no usage. Only the successful attempt's tokens count.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        price: TokenPrice = DEFAULT_PRICE,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.price = price
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP client, unless it was injected."""
        if self._owns_client:
            self._client.close()

    def cluster_keywords(self, keywords: list[str]) -> AIResult[list[KeywordGroup]]:
        if not keywords:
            return AIResult([], 0)
        numbered = "\n".join(f"{i}. {k}" for i, k in enumerate(keywords))
        user = f"Keywords (numbered from 0):\n{numbered}"
        return self._call(_CLUSTER, user, lambda a: repair_clusters(keywords, a))

    def generate_ideas(self, cluster: str, keywords: list[str]) -> AIResult[list[Idea]]:
        user = f"Cluster: {cluster}\nKeywords:\n" + "\n".join(f"- {k}" for k in keywords)

        def parse(answer: dict[str, Any]) -> list[Idea]:
            ideas = [_obj(i, "an idea") for i in _items(answer, "ideas")]
            return [Idea(_text(i, "title"), _text(i, "description")) for i in ideas]

        return self._call(_IDEAS, user, parse)

    def write_article(self, idea: Idea, keywords: list[str]) -> AIResult[Article]:
        user = (
            f"Title idea: {idea.title}\nDescription: {idea.description}\n"
            "Keywords to cover:\n" + "\n".join(f"- {k}" for k in keywords)
        )

        def parse(answer: dict[str, Any]) -> Article:
            outline = _strings(answer, "outline", non_empty=False)
            return Article(_text(answer, "title"), outline, _text(answer, "body"))

        return self._call(_ARTICLE, user, parse)

    def image_prompts(self, article: Article) -> AIResult[list[str]]:
        outline = "\n".join(f"- {o}" for o in article.outline)
        user = f"Article: {article.title}\nOutline:\n{outline}\n\n{article.body[:4000]}"
        return self._call(_PROMPTS, user, lambda a: _strings(a, "prompts"))

    def render_image(self, prompt: str) -> AIResult[bytes]:
        return self._call(_SVG, f"Illustration to draw: {prompt}", _svg)

    def _call(self, system: str, user: str, parse: Callable[[dict[str, Any]], T]) -> AIResult[T]:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                response = self._client.post(
                    self.url, json=body, headers=self._headers, timeout=self.timeout
                )
            except httpx.UnsupportedProtocol as error:
                raise AIError(f"openai: bad base_url: {error}", retryable=False) from error
            except httpx.TransportError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        payload = _obj(response.json(), "the response")
                        value = parse(self._answer(payload))
                        tokens = _tokens(payload)
                        credits = 1 if tokens is None else call_credits(*tokens, self.price)
                        return AIResult(value, credits, None if tokens is None else Tokens(*tokens))
                    except (_Invalid, ValueError) as error:
                        last = f"invalid answer: {error}"
                elif status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    retry_after = _retry_after(response)
                else:
                    raise AIError(f"openai: HTTP {status}: {response.text[:300]}", retryable=False)
            if attempt < self.max_retries:
                delay = self.backoff * 2**attempt if retry_after is None else retry_after
                self._sleep(min(delay, MAX_DELAY))
        raise AIError(f"openai: gave up after {self.max_retries + 1} attempts; last: {last}")

    @staticmethod
    def _answer(payload: dict[str, Any]) -> dict[str, Any]:
        choices = _items(payload, "choices")
        message = _obj(_obj(choices[0], "a choice").get("message"), "the message")
        content = _text(message, "content").strip()
        if content.startswith("```"):  # some compatible servers fence JSON regardless
            content = content.strip("`").removeprefix("json").strip()
        return _obj(_printable(json.loads(content)), "the answer")

    def describe(self) -> ProviderProfile:
        """Priced by tokens: the estimate learns yields and tokens per call from runs."""
        return ProviderProfile(f"openai:{self.model}", price=self.price)


def _tokens(payload: dict[str, Any]) -> tuple[int, int] | None:
    """(input, output) tokens of an answer; the output is what the total adds to the
    input when only those two are given. None when the server reports no usage."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion, total = (
        _count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    )
    if completion is None and total is not None:
        completion = max(0, total - (prompt or 0))
    if prompt is None and completion is None:
        return None
    return prompt or 0, completion or 0


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds, if it is a number (HTTP dates are ignored)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
