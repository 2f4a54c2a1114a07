"""The OpenAI-compatible AI provider against a real local HTTP server that speaks the API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from automation.adapters.ai_openai import OpenAICompatibleProvider
from automation.application.ai import AIError, Article, Idea, KeywordGroup
from automation.application.ports import KeywordInput
from automation.bootstrap import Services, build
from automation.config import Settings
from automation.domain.pricing import TokenPrice
from automation.domain.run import AutomationRun
from automation.pipeline_wiring import ai_provider
from tests.support.runs import run_to_end

KEY = "sk-test-123"
MODEL = "test-model"

CANNED: dict[str, Any] = {
    "cluster": {
        "clusters": [{"name": "shoes", "members": [0, 1]}, {"name": "hats", "members": [2]}]
    },
    "ideas": {"ideas": [{"title": "Best shoes", "description": "A guide to shoes."}]},
    "article": {"title": "Best shoes", "outline": ["Intro", "Picks"], "body": "Shoes are..."},
    "prompts": {"prompts": ["a red shoe on a white background", "a shoe shop"]},
    "svg": {"svg": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"></svg>'},
}


def kind_of(prompt: str) -> str:
    for marker, kind in [
        ('"clusters"', "cluster"),
        ('"ideas"', "ideas"),
        ('"outline"', "article"),
        ('"prompts"', "prompts"),
        ('"svg"', "svg"),
    ]:
        if marker in prompt:
            return kind
    raise AssertionError(f"unknown request kind: {prompt!r}")


class FakeOpenAI:
    """What the fake server answers next, and every request it was sent."""

    def __init__(self) -> None:
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: list[str] = []  # consumed one per request: 429 503 401 invalid slow html
        self.retry_after = "0"
        self.answers: dict[str, Any] = {}  # per kind, instead of CANNED
        self.content: str | None = None  # raw message content, instead of any answer
        self.usage: dict[str, Any] | None = {"prompt_tokens": 2000, "total_tokens": 2500}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> Response:
            body = await request.json()
            self.requests.append({"headers": dict(request.headers), "body": body})
            failure = self.failures.pop(0) if self.failures else None
            if failure == "429":
                error = {"error": {"message": "rate limited"}}
                return JSONResponse(error, 429, headers={"Retry-After": self.retry_after})
            if failure in ("503", "401"):
                return JSONResponse({"error": {"message": "nope"}}, int(failure))
            if failure == "html":
                return PlainTextResponse("<html>gateway</html>", 200)
            if failure == "slow":
                await asyncio.sleep(0.6)
            kind = kind_of(" ".join(m["content"] for m in body["messages"]))
            content = json.dumps(self.answers.get(kind, CANNED[kind]))
            if self.content is not None:
                content = self.content
            if failure == "invalid":
                content = '{"clusters": [oops'
            message = {"role": "assistant", "content": content}
            answer: dict[str, Any] = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
            if self.usage is not None:
                answer["usage"] = self.usage
            return JSONResponse(answer)

        return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    port = free_port()
    config = uvicorn.Config(
        fake.app(), host="127.0.0.1", port=port, log_level="warning", loop="asyncio"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "the fake OpenAI server did not start"
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}/v1"
    yield fake
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(
    fake: FakeOpenAI, sleeps: list[float]
) -> Iterator[Callable[..., OpenAICompatibleProvider]]:
    made: list[OpenAICompatibleProvider] = []

    def provider(**overrides: Any) -> OpenAICompatibleProvider:
        options: dict[str, Any] = {"timeout": 5.0, "backoff": 0.5, "sleep": sleeps.append}
        options.update(overrides)
        made.append(OpenAICompatibleProvider(fake.url, KEY, MODEL, **options))
        return made[-1]

    yield provider
    for p in made:
        p.close()


ARTICLE = Article("Best shoes", ["Intro", "Picks"], "Shoes are...")


def test_cluster_keywords(make: Callable[..., OpenAICompatibleProvider]) -> None:
    result = make().cluster_keywords(["running shoes", "trail shoes", "sun hat"])
    assert result.value == [KeywordGroup("shoes", [0, 1]), KeywordGroup("hats", [2])]
    assert result.credits == 3  # 2500 tokens at 1000 a credit


def test_generate_ideas(make: Callable[..., OpenAICompatibleProvider]) -> None:
    result = make().generate_ideas("shoes", ["running shoes"])
    assert result.value == [Idea("Best shoes", "A guide to shoes.")]
    assert result.credits == 3


def test_write_article(make: Callable[..., OpenAICompatibleProvider]) -> None:
    result = make().write_article(Idea("Best shoes", "A guide"), ["running shoes"])
    assert result.value == ARTICLE
    assert result.credits == 3


def test_image_prompts(make: Callable[..., OpenAICompatibleProvider]) -> None:
    result = make().image_prompts(ARTICLE)
    assert result.value == ["a red shoe on a white background", "a shoe shop"]
    assert result.credits == 3


def test_render_image(make: Callable[..., OpenAICompatibleProvider]) -> None:
    result = make().render_image("a red shoe")
    assert result.value == CANNED["svg"]["svg"].encode("utf-8")
    assert result.credits == 3


@pytest.mark.parametrize(
    ("usage", "price", "credits"),
    [
        # at the default price, 1 credit per 1,000 tokens of either kind
        ({"total_tokens": 1000}, TokenPrice(1, 1), 1),
        ({"total_tokens": 1001}, TokenPrice(1, 1), 2),
        ({"total_tokens": 0}, TokenPrice(1, 1), 1),
        ({"prompt_tokens": 10}, TokenPrice(1, 1), 1),
        (None, TokenPrice(1, 1), 1),
        # input and output priced apart: 2000 x 1 + 500 x 4 = 4000 per 1,000
        ({"prompt_tokens": 2000, "total_tokens": 2500}, TokenPrice(1, 4), 4),
        ({"prompt_tokens": 2000, "completion_tokens": 501}, TokenPrice(1, 4), 5),
        ({"prompt_tokens": 300, "completion_tokens": 100}, TokenPrice(10, 30), 6),
        ({"completion_tokens": 1000}, TokenPrice(0, 0), 1),  # never below 1
    ],
)
def test_credits_from_usage_at_the_model_price(
    make: Callable[..., OpenAICompatibleProvider],
    fake: FakeOpenAI,
    usage: dict[str, Any] | None,
    price: TokenPrice,
    credits: int,
) -> None:
    fake.usage = usage
    result = make(price=price).image_prompts(ARTICLE)
    assert result.credits == credits
    if usage is not None:  # the tokens are handed on, for the estimate to learn from
        assert result.tokens is not None


def test_the_configured_price_of_the_model_is_charged(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMATION_OPENAI_PRICES", '{"' + MODEL + '": {"input": 2, "output": 10}}')
    settings = Settings(
        AUTOMATION_AI_PROVIDER="openai",
        OPENAI_BASE_URL=fake.url,
        OPENAI_MODEL=MODEL,
        OPENAI_API_KEY=KEY,
    )
    provider = ai_provider(settings)
    assert provider.describe().price == TokenPrice(2, 10)
    fake.usage = {"prompt_tokens": 2000, "completion_tokens": 500}
    assert provider.image_prompts(ARTICLE).credits == 9  # (2000 x 2 + 500 x 10) / 1000
    other = ai_provider(settings.model_copy(update={"openai_model": "another"}))
    assert other.describe().price == TokenPrice(1, 1)  # the default price


def test_sends_key_model_and_json_mode(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI
) -> None:
    make().cluster_keywords(["running shoes", "trail shoes", "sun hat"])
    [request] = fake.requests
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == MODEL
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "0. running shoes\n1. trail shoes\n2. sun hat" in body["messages"][1]["content"]


def test_no_keywords_asks_nothing(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI
) -> None:
    result = make().cluster_keywords([])
    assert (result.value, result.credits, fake.requests) == ([], 0, [])


def test_cluster_answer_is_repaired(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI
) -> None:
    keywords = ["k0", "k1", "k2", "k3", "k4"]
    fake.answers["cluster"] = {
        "clusters": [
            {"name": "a", "members": [0, 7, -1, 0, 1]},  # out of range, repeated
            {"name": "b", "members": [1, 3]},  # 1 is already in a
            {"name": "gone", "members": [9, 3]},  # nothing left: dropped
        ]
    }
    groups = make().cluster_keywords(keywords).value
    assert groups == [
        KeywordGroup("a", [0, 1]),
        KeywordGroup("b", [3]),
        KeywordGroup("k2", [2]),
        KeywordGroup("k4", [4]),
    ]
    assert sorted(m for g in groups for m in g.members) == list(range(len(keywords)))


def test_retries_5xx_then_succeeds(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI, sleeps: list[float]
) -> None:
    fake.failures = ["503", "503"]
    assert make().image_prompts(ARTICLE).credits == 3
    assert len(fake.requests) == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(("header", "slept"), [("0", 0.0), ("2", 2.0), ("100", 8.0)])
def test_429_honours_retry_after(
    make: Callable[..., OpenAICompatibleProvider],
    fake: FakeOpenAI,
    sleeps: list[float],
    header: str,
    slept: float,
) -> None:
    fake.failures, fake.retry_after = ["429"], header
    make().render_image("a shoe")
    assert len(fake.requests) == 2
    assert sleeps == [slept]


def test_backoff_is_capped(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI, sleeps: list[float]
) -> None:
    fake.failures = ["503"] * 5
    with pytest.raises(AIError):
        make(backoff=3.0).render_image("a shoe")
    assert sleeps == [3.0, 6.0, 8.0, 8.0]


def test_401_fails_at_once(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI, sleeps: list[float]
) -> None:
    fake.failures = ["401"] * 5
    with pytest.raises(AIError, match="401") as caught:
        make().generate_ideas("shoes", ["running shoes"])
    assert caught.value.retryable is False
    assert len(fake.requests) == 1
    assert sleeps == []


def test_exhaustion_is_retryable_and_names_the_cause(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI
) -> None:
    fake.failures = ["503"] * 10
    with pytest.raises(AIError, match=r"after 3 attempts; last: HTTP 503") as caught:
        make(max_retries=2).write_article(Idea("t", "d"), [])
    assert caught.value.retryable is True
    assert len(fake.requests) == 3


@pytest.mark.parametrize("failure", ["invalid", "html"])
def test_invalid_answer_is_retried(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI, failure: str
) -> None:
    fake.failures = [failure]
    result = make().cluster_keywords(["a", "b", "c"])
    assert result.value == [KeywordGroup("shoes", [0, 1]), KeywordGroup("hats", [2])]
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        ("cluster", {"groups": []}),
        ("cluster", {"clusters": [{"name": "a", "members": ["0"]}]}),
        ("cluster", {"clusters": [{"members": [0]}]}),
        ("ideas", {"ideas": []}),
        ("ideas", {"ideas": [{"title": "t"}]}),
        ("article", {"title": "t", "outline": "not a list", "body": "b"}),
        ("article", {"title": "t", "outline": []}),
        ("prompts", {"prompts": [1, 2]}),
        ("svg", {"svg": "<html></html>"}),
        ("svg", {"image": "<svg></svg>"}),
        ("svg", ["<svg></svg>"]),
    ],
)
def test_wrong_shapes_count_against_retries(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI, call: str, answer: Any
) -> None:
    fake.answers[call] = answer
    provider = make(max_retries=1)
    calls: dict[str, Callable[[], object]] = {
        "cluster": lambda: provider.cluster_keywords(["a"]),
        "ideas": lambda: provider.generate_ideas("c", ["a"]),
        "article": lambda: provider.write_article(Idea("t", "d"), ["a"]),
        "prompts": lambda: provider.image_prompts(ARTICLE),
        "svg": lambda: provider.render_image("p"),
    }
    with pytest.raises(AIError, match="invalid answer") as caught:
        calls[call]()
    assert caught.value.retryable is True
    assert len(fake.requests) == 2


def test_fenced_json_is_accepted(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI
) -> None:
    fake.content = '```json\n{"prompts": ["a shoe"]}\n```'
    assert make().image_prompts(ARTICLE).value == ["a shoe"]


def test_control_characters_are_dropped_but_line_breaks_kept(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI
) -> None:
    fake.answers["article"] = {
        "title": "Best\u0000 shoes\u001b",
        "outline": ["Intro\u0007", "Picks"],
        "body": "Shoes are...\n\n\tGood.\r",
    }
    article = make().write_article(Idea("Best shoes", "A guide"), ["running shoes"]).value
    assert article == Article("Best shoes", ["Intro", "Picks"], "Shoes are...\n\n\tGood.")


def test_timeout_is_retried(
    make: Callable[..., OpenAICompatibleProvider], fake: FakeOpenAI, sleeps: list[float]
) -> None:
    fake.failures = ["slow"]
    assert make(timeout=0.2).image_prompts(ARTICLE).credits == 3
    assert len(fake.requests) == 2
    assert sleeps == [0.5]


def test_connection_errors_are_retried(sleeps: list[float]) -> None:
    provider = OpenAICompatibleProvider(
        f"http://127.0.0.1:{free_port()}/v1", KEY, MODEL, max_retries=2, sleep=sleeps.append
    )
    with pytest.raises(AIError, match="ConnectError") as caught:
        provider.render_image("a shoe")
    provider.close()
    assert caught.value.retryable is True
    assert sleeps == [0.5, 1.0]


def test_injected_client_is_used_and_left_open(fake: FakeOpenAI) -> None:
    with httpx.Client() as client:
        provider = OpenAICompatibleProvider(fake.url, KEY, MODEL, client=client)
        assert provider.render_image("a shoe").credits == 3
        provider.close()
        assert not client.is_closed


def test_a_real_model_is_estimated_from_the_tokens_its_site_used_before(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Runs against the fake server record their tokens (TokensUsed); the next estimate
    of the site learns its yields and tokens per call from them, at the model's price."""
    monkeypatch.setenv("AUTOMATION_OPENAI_PRICES", '{"' + MODEL + '": {"input": 1, "output": 4}}')
    fake.usage = {"prompt_tokens": 600, "completion_tokens": 350}  # 600 + 1400: 2 credits

    def stack() -> Services:
        return build(
            Settings(
                automation_data_dir=tmp_path_factory.mktemp("var"),
                AUTOMATION_AI_PROVIDER="openai",
                OPENAI_BASE_URL=fake.url,
                OPENAI_API_KEY=KEY,
                OPENAI_MODEL=MODEL,
            )
        )

    services = stack()
    app = services.app
    account_id, _ = app.open_account("Acme", 100_000)
    site_id = app.register_site(account_id, "Site", "UTC").value.id
    app.update_config(account_id, site_id, {"within_stage_delay": 0, "stage_1_batch_size": 3})

    def estimate_then_run(keywords: list[str]) -> tuple[dict[str, Any], AutomationRun]:
        services.content.add_keywords(site_id, [KeywordInput(k) for k in keywords], app.clock.now())
        pending = services.content.pending_work(site_id)
        estimate = app.estimate(account_id, site_id, pending)
        run_id = app.start_run(account_id, site_id, pending).value.id
        return estimate, run_to_end(services, account_id, run_id)

    try:
        first, run = estimate_then_run([f"trail shoe {n}" for n in range(6)])
        assert run.status.value == "completed", run.error
        assert first["basis"]["provider"] == f"openai:{MODEL}"
        assert {s["source"] for s in first["basis"]["stages"]} == {"prior"}
        used = [e for e in app.events.get(run.id) if isinstance(e, AutomationRun.TokensUsed)]
        assert {e.stage for e in used} == {1, 2, 4, 5, 6}
        for event in used:
            assert (event.input_tokens, event.output_tokens) == (
                600 * event.calls,
                350 * event.calls,
            )
        assert run.total_credits_used == 2 * sum(e.calls for e in used)
    finally:
        services.close()
    services = build(services.settings)  # a fresh stack: what it learns is in the events
    app = services.app
    try:
        second, run = estimate_then_run([f"sun hat {n}" for n in range(6)])
        assert run.status.value == "completed", run.error
        stages = second["basis"]["stages"]
        for planned in stages:
            if planned["stage"] != 3:
                assert (planned["source"], planned["credits_per_call"]) == ("learned", 2)
        assert stages[0]["yield"] == pytest.approx(4 / 6, abs=1e-4)  # 2 per batch of 3
        assert stages[1]["yield"] == 1  # the fake server's one idea per cluster
        assert second["estimated_credits"] == run.total_credits_used
    finally:
        services.close()
