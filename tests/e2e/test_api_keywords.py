"""Importing and listing a site's keywords."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

KEYWORDS = "/api/v1/planner/keywords"


def listing(api: Api, site: str, **params: Any) -> dict[str, Any]:
    answer = api.get(KEYWORDS, site_id=site, **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) >= {"count", "results"}
    return body


def test_an_import_counts_created_and_case_insensitive_duplicates(api: Api) -> None:
    site = api.site()
    first = api.keywords(site, ["Trail Shoes", "trail shoes", "TRAIL SHOES", "road shoes"])
    assert first.status_code == 201, first.text
    assert first.json() == {"created": 2, "duplicates": 2}

    second = api.keywords(site, ["Road Shoes", "  trail shoes  ", "hiking boots"])
    assert second.status_code == 201, second.text
    assert second.json() == {"created": 1, "duplicates": 2}

    again = api.keywords(site, ["HIKING BOOTS"])
    assert again.json() == {"created": 0, "duplicates": 1}

    body = listing(api, site)
    assert body["count"] == 3
    texts = sorted(item["keyword"].casefold() for item in body["results"])
    assert texts == ["hiking boots", "road shoes", "trail shoes"]


def test_object_items_keep_their_volume(api: Api) -> None:
    site = api.site()
    answer = api.keywords(
        site,
        [
            {"keyword": "best trail shoes", "volume": 1200},
            "plain keyword",
            {"keyword": "no volume"},
            {"keyword": "BEST TRAIL SHOES", "volume": 5},
        ],
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"created": 3, "duplicates": 1}
    results = {item["keyword"]: item for item in listing(api, site)["results"]}
    assert set(results) == {"best trail shoes", "plain keyword", "no volume"}
    assert results["best trail shoes"]["volume"] == 1200
    assert results["plain keyword"]["volume"] is None
    assert results["no volume"]["volume"] is None


def test_each_listed_keyword_has_an_id_and_a_status(api: Api) -> None:
    site = api.site()
    api.keywords(site, ["one", "two", "three"])
    results = listing(api, site)["results"]
    assert len(results) == 3
    ids = [item["id"] for item in results]
    assert len(set(ids)) == 3
    assert all(isinstance(i, str) and i for i in ids)
    assert all(isinstance(item["status"], str) and item["status"] for item in results)


def test_the_status_filter_selects_keywords_by_status(api: Api) -> None:
    site = api.site()
    api.keywords(site, ["one", "two", "three"])
    status = listing(api, site)["results"][0]["status"]
    same = listing(api, site, status=status)
    assert same["count"] == 3
    assert {item["status"] for item in same["results"]} == {status}
    other = listing(api, site, status="no-such-status")
    assert other == {"count": 0, "results": []}


def test_limit_and_offset_page_through_every_keyword_once(api: Api) -> None:
    site = api.site()
    words = [f"keyword {i:02d}" for i in range(7)]
    assert api.keywords(site, words).json() == {"created": 7, "duplicates": 0}
    seen: list[str] = []
    for offset in range(0, 8, 3):
        page = listing(api, site, limit=3, offset=offset)
        assert page["count"] == 7
        assert len(page["results"]) == min(3, 7 - offset)
        seen += [item["id"] for item in page["results"]]
    assert len(seen) == 7
    assert len(set(seen)) == 7
    assert listing(api, site, offset=7)["results"] == []
    assert listing(api, site, offset=100) == {"count": 7, "results": []}
    assert len(listing(api, site, limit=1)["results"]) == 1
    assert len(listing(api, site, limit=1000)["results"]) == 7
    default = listing(api, site)
    assert {item["id"] for item in default["results"]} == set(seen)


def test_keywords_of_one_site_are_not_listed_or_duplicated_in_another(api: Api) -> None:
    first, second = api.site("First"), api.site("Second")
    assert api.keywords(first, ["shared", "only first"]).json() == {"created": 2, "duplicates": 0}
    assert api.keywords(second, ["SHARED"]).json() == {"created": 1, "duplicates": 0}
    assert listing(api, first)["count"] == 2
    second_listing = listing(api, second)
    assert second_listing["count"] == 1
    assert second_listing["results"][0]["keyword"].casefold() == "shared"
