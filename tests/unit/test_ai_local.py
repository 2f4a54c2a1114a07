"""The local AI provider: deterministic, offline, real work, priced as the estimate assumes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.adapters.ai_local import LocalAIProvider, ZeroCostAIProvider
from automation.application.ai import AIProvider, AIResult, Article, Idea

SVG = "{http://www.w3.org/2000/svg}"
PROPERTIES = settings(max_examples=60, deadline=None)

# A realistic marketing keyword list: 6 topics of 10 keywords each.
TOPICS = {
    "trail running": [
        "best trail running shoes", "trail running shoes for women",
        "waterproof trail running shoes", "trail shoes for beginners", "how to choose trail shoes",
        "trail running tips for beginners", "trail running hydration vest",
        "best hydration vest for running", "ultramarathon training plan",
        "50k ultramarathon training schedule",
    ],
    "espresso": [
        "how to brew espresso", "espresso brewing temperature", "best espresso machine for home",
        "espresso machine under 500", "espresso grind size", "best coffee grinder for espresso",
        "how to make a latte at home", "latte art for beginners", "milk frothing for latte art",
        "espresso vs americano",
    ],
    "seo": [
        "keyword research tools", "free keyword research tool", "how to do keyword research",
        "long tail keyword research", "link building strategies",
        "link building for small business", "technical seo audit checklist", "seo audit tool",
        "on page seo checklist", "local seo for small business",
    ],
    "gardening": [
        "how to grow tomatoes", "growing tomatoes in containers", "tomato plant diseases",
        "best fertilizer for tomatoes", "raised garden bed ideas",
        "how to build a raised garden bed", "raised bed soil mix", "composting for beginners",
        "how to start a compost bin", "vegetable garden layout",
    ],
    "finance": [
        "how to start a budget", "budget planner template", "zero based budget",
        "best budgeting apps", "how to save for retirement", "roth ira vs traditional ira",
        "retirement savings calculator", "how to pay off credit card debt",
        "debt snowball method", "credit card debt consolidation",
    ],
    "dogs": [
        "how to potty train a puppy", "puppy potty training schedule", "crate training a puppy",
        "best dog food for puppies", "grain free dog food", "dog food allergies",
        "how to stop dog barking", "dog separation anxiety", "leash training a dog",
        "best toys for puppies",
    ],
}  # fmt: skip
SAMPLE = [k for keywords in TOPICS.values() for k in keywords]
TOPIC_OF = {k: topic for topic, keywords in TOPICS.items() for k in keywords}

VOCAB = ["trail", "shoes", "running", "espresso", "brew", "best", "for", "the", "dog", "food"]
keyword = st.one_of(
    st.lists(st.sampled_from(VOCAB), min_size=0, max_size=4).map(" ".join),
    st.text(max_size=15),
)


def run_everything(provider: LocalAIProvider, keywords: list[str]) -> bytes:
    """Every call's output, serialised, for the whole pipeline over the keywords."""
    out = [repr(provider.cluster_keywords(keywords))]
    for group in provider.cluster_keywords(keywords).value:
        members = [keywords[i] for i in group.members]
        for idea in provider.generate_ideas(group.name, members).value:
            article = provider.write_article(idea, members).value
            out.append(repr(article))
            for prompt in provider.image_prompts(article).value:
                out.append(provider.render_image(prompt).value.hex())
    return "\n".join(out).encode()


def test_it_satisfies_the_port() -> None:
    provider: AIProvider = LocalAIProvider()
    assert provider.name == "local"


def test_two_instances_give_identical_output() -> None:
    assert run_everything(LocalAIProvider(), SAMPLE) == run_everything(LocalAIProvider(), SAMPLE)


def test_output_does_not_depend_on_the_hash_seed() -> None:
    """String hashing is salted per process; the output must not notice."""
    script = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]); "
        "from test_ai_local import SAMPLE, run_everything; "
        "from automation.adapters.ai_local import LocalAIProvider; "
        "print(hashlib.sha256(run_everything(LocalAIProvider(), SAMPLE)).hexdigest())"
    )
    here = os.path.dirname(__file__)
    other = subprocess.run(
        [sys.executable, "-c", script, here],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert other == hashlib.sha256(run_everything(LocalAIProvider(), SAMPLE)).hexdigest()


def test_similar_keywords_cluster_together_and_others_apart() -> None:
    keywords = ["best trail shoes", "trail shoes for beginners", "how to brew espresso"]
    groups = LocalAIProvider().cluster_keywords(keywords).value
    assert [g.members for g in groups] == [[0, 1], [2]]
    assert groups[0].name == "trail shoes"


def test_the_sample_clusters_by_topic_at_about_four_per_cluster() -> None:
    groups = LocalAIProvider().cluster_keywords(SAMPLE).value
    for group in groups:
        assert group.name.strip()
        assert len({TOPIC_OF[SAMPLE[i]] for i in group.members}) == 1, group
    average = len(SAMPLE) / len(groups)
    assert 3 <= average <= 6, average


@PROPERTIES
@given(st.lists(keyword, max_size=25))
def test_every_position_is_in_exactly_one_nonempty_group(keywords: list[str]) -> None:
    groups = LocalAIProvider().cluster_keywords(keywords).value
    positions = sorted(i for g in groups for i in g.members)
    assert positions == list(range(len(keywords)))
    assert all(g.members and g.name for g in groups)


@pytest.mark.parametrize("topic", list(TOPICS))
def test_two_ideas_with_titles(topic: str) -> None:
    ideas = LocalAIProvider().generate_ideas(topic, TOPICS[topic]).value
    assert len(ideas) == 2
    assert all(idea.title.strip() and idea.description.strip() for idea in ideas)
    assert ideas[0].title != ideas[1].title


def test_articles_are_structured_and_of_several_hundred_words() -> None:
    provider = LocalAIProvider()
    for group in provider.cluster_keywords(SAMPLE).value:
        members = [SAMPLE[i] for i in group.members]
        for idea in provider.generate_ideas(group.name, members).value:
            article = provider.write_article(idea, members).value
            assert article.title == idea.title
            assert 5 <= len(article.outline) <= 7
            assert 400 <= len(article.body.split()) <= 900
            for heading in article.outline:
                assert f"\n## {heading}\n" in article.body
            assert "## Conclusion" in article.body
            assert any(f'"{k}"' in article.body for k in members)


@PROPERTIES
@given(st.lists(keyword, max_size=6), st.text(max_size=40))
def test_any_input_makes_an_article(keywords: list[str], title: str) -> None:
    article = LocalAIProvider().write_article(Idea(title, "A description."), keywords).value
    assert 5 <= len(article.outline) <= 7
    assert all(heading in article.body for heading in article.outline)


def test_two_image_prompts_from_title_and_outline() -> None:
    article = Article("Trail Shoes 101", ["Why Trail Shoes Matter", "Fit and Grip"], "body")
    prompts = LocalAIProvider().image_prompts(article).value
    assert len(prompts) == 2
    assert all("Trail Shoes 101" in p for p in prompts)
    assert any(heading in prompts[1] for heading in article.outline)


@PROPERTIES
@given(st.text(max_size=80))
def test_images_are_valid_svg(prompt: str) -> None:
    image = LocalAIProvider().render_image(prompt).value
    root = ET.fromstring(image)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("1200", "630")
    assert root.find(f"{SVG}defs/{SVG}linearGradient") is not None


def test_image_text_is_escaped_and_varies_with_the_prompt() -> None:
    provider = LocalAIProvider()
    image = provider.render_image('Shoes <b>&</b> "grip"').value
    text = "".join(ET.fromstring(image).find(f"{SVG}text").itertext())  # type: ignore[union-attr]
    assert text == 'Shoes <b>&</b> "grip"'
    assert image != provider.render_image("Shoes and grip").value


@pytest.mark.parametrize("provider", [LocalAIProvider(), ZeroCostAIProvider()])
@PROPERTIES
@given(words=st.lists(st.sampled_from(sorted(SAMPLE)), min_size=1, max_size=5))
def test_each_call_costs_and_yields_what_the_provider_describes(
    provider: LocalAIProvider, words: list[str]
) -> None:
    """The estimate takes these figures as exact: every call must keep to them."""
    profile = provider.describe()
    assert profile.dry_run
    assert profile.price is None
    assert profile.rates is not None
    rates = profile.rates
    idea = Idea(words[0], " ".join(words))
    article = provider.write_article(idea, words)
    calls: dict[int, tuple[AIResult[Any], int | None]] = {
        1: (provider.cluster_keywords(words), None),  # clusters: counted by a dry run
        2: (provider.generate_ideas(words[0], words), 2),
        4: (article, None),
        5: (provider.image_prompts(article.value), 2),
        6: (provider.render_image(" ".join(words)), None),
    }
    for stage, (result, made) in calls.items():
        assert result.credits == rates[stage].credits_per_call
        if made is not None:
            assert len(result.value) == rates[stage].yield_ == made
    assert (rates[3].credits_per_call, rates[3].yield_) == (0, 1)
    assert (rates[4].yield_, rates[6].yield_) == (1, 1)


def test_zero_cost_provider_is_free_and_otherwise_the_same() -> None:
    free, local = ZeroCostAIProvider(), LocalAIProvider()
    article = Article("T", ["A", "B"], "body")
    results: list[tuple[AIResult[Any], AIResult[Any]]] = [
        (free.cluster_keywords(SAMPLE), local.cluster_keywords(SAMPLE)),
        (free.generate_ideas("espresso", ["x"]), local.generate_ideas("espresso", ["x"])),
        (free.write_article(Idea("T", "D"), ["x"]), local.write_article(Idea("T", "D"), ["x"])),
        (free.image_prompts(article), local.image_prompts(article)),
        (free.render_image("x"), local.render_image("x")),
    ]
    for zero, priced in results:
        assert zero.credits == 0
        assert zero.value == priced.value
