"""The whole pipeline over HTTP: a server that runs its roles, a run from keywords to the
review gate, and everything the run made, read through the API; and ``automation demo``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automation.bootstrap import Services
from automation.demo import demo_keywords
from automation.domain.values import STAGE_NAMES, Stage
from tests.conftest import Api, RunningServer
from tests.support.pipeline import KEYWORDS

AUTOMATION = "/api/v1/automation"
PLANNER = "/api/v1/planner"
WRITER = "/api/v1/writer"
CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "stage_1_batch_size": 20,
    "stage_2_batch_size": 2,
    "stage_3_batch_size": 5,
    "stage_4_batch_size": 3,
    "stage_5_batch_size": 3,
    "stage_6_batch_size": 4,
}
PROCESSING_KEYS = {
    "run_id",
    "status",
    "stage",
    "stage_name",
    "processed",
    "total",
    "percent",
    "current_items",
    "up_next",
    "eta_seconds",
}
# Each listing, where it is, and the field naming the item it came from.
LISTINGS = {
    "clusters": (PLANNER, None),
    "ideas": (PLANNER, "cluster_id"),
    "tasks": (WRITER, "idea_id"),
    "content": (WRITER, "task_id"),
    "images": (WRITER, "content_id"),
}


@pytest.fixture
def server(services: Services) -> Iterator[RunningServer]:
    """Overrides conftest's server: this one runs the pipeline's roles too."""
    with RunningServer(services, pipeline=True) as running:
        yield running


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def not_found(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == code, answer.text


def listing(api: Api, kind: str, site: str, **params: Any) -> dict[str, Any]:
    base = PLANNER if kind in ("keywords", "clusters", "ideas") else WRITER
    body: dict[str, Any] = ok(api.get(f"{base}/{kind}", site_id=site, **params))
    return body


def everything(api: Api, kind: str, site: str) -> list[dict[str, Any]]:
    body = listing(api, kind, site, limit=1000)
    assert body["count"] == len(body["results"])
    results: list[dict[str, Any]] = body["results"]
    return results


def check_processing(view: dict[str, Any], run_id: str) -> None:
    assert set(view) == PROCESSING_KEYS, view
    assert view["run_id"] == run_id
    assert view["status"] in ("running", "paused")
    assert 1 <= view["stage"] <= 7
    assert view["stage_name"] == STAGE_NAMES[Stage(view["stage"])]
    assert 0 <= view["processed"] <= view["total"]
    assert 0 <= view["percent"] <= 100
    for item in [*view["current_items"], *view["up_next"]]:
        assert set(item) == {"id", "title"}, item
        assert isinstance(item["id"], str)
        assert isinstance(item["title"], str)
    assert len(view["up_next"]) <= 5
    assert view["eta_seconds"] is None or view["eta_seconds"] >= 0


def run_to_the_end(api: Api, site: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Start a run and watch it until history shows it ended: (run id, the history
    entry, the current_processing views seen while it ran)."""
    started = ok(api.run_now(site), 202)
    assert started["status"] == "running"
    run_id: str = started["run_id"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while True:
        view = ok(api.get(f"{AUTOMATION}/current_processing", site_id=site))["processing"]
        if view is not None:
            check_processing(view, run_id)
            seen.append(view)
            same = ok(api.get(f"{AUTOMATION}/current_processing", site_id=site, run_id=run_id))[
                "processing"
            ]
            assert same is None or same["run_id"] == run_id
        current = ok(api.get(f"{AUTOMATION}/current_run", site_id=site))["run"]
        if current is not None:
            assert current["run_id"] == run_id
            assert [s["stage"] for s in current["stages"]] == [1, 2, 3, 4, 5, 6, 7]
        runs = ok(api.get(f"{AUTOMATION}/history", site_id=site))["runs"]
        assert runs[0]["run_id"] == run_id
        if runs[0]["status"] not in ("running", "paused"):
            return run_id, runs[0], seen
        assert time.monotonic() < deadline, f"the run did not end: {runs[0]}"
        time.sleep(0.02)


def prepared_site(api: Api, config: dict[str, int] = CONFIG) -> str:
    site = api.site()
    assert ok(api.keywords(site, KEYWORDS), 201) == {"created": len(KEYWORDS), "duplicates": 0}
    stored = ok(api.put(f"{AUTOMATION}/update_config", config, site_id=site))
    assert {k: stored[k] for k in config} == config
    return site


# --- the run -------------------------------------------------------------------------------


def test_a_run_over_http_shows_its_progress_and_charges_what_it_used(api: Api) -> None:
    site = prepared_site(api)
    before = ok(api.get(f"{AUTOMATION}/estimate", site_id=site))
    assert before["sufficient"] is True

    run_id, entry, seen = run_to_the_end(api, site)

    assert entry["status"] == "completed", entry
    assert seen, "current_processing never showed the running run"
    assert {v["stage"] for v in seen} <= set(range(1, 8))
    assert ok(api.get(f"{AUTOMATION}/current_run", site_id=site))["run"] is None
    assert ok(api.get(f"{AUTOMATION}/current_processing", site_id=site)) == {"processing": None}
    used = entry["total_credits_used"]
    assert used > 0
    # The account paid exactly what the run used (the estimate's accuracy is checked on
    # the demo data, which is what it is calibrated on: see the test below).
    after = ok(api.get(f"{AUTOMATION}/estimate", site_id=site))
    assert before["current_balance"] - after["current_balance"] == used
    # The logs tell every stage, and each batch's credits, which add up to the total.
    lines = ok(api.get(f"{AUTOMATION}/logs", run_id=run_id, lines=1000))["lines"]
    text = "\n".join(lines)
    for stage in Stage:
        assert f"Stage {int(stage)} ({STAGE_NAMES[stage]}) started" in text, stage
        assert f"Stage {int(stage)} ({STAGE_NAMES[stage]}) completed" in text, stage
    batch_credits = [
        int(m.group(1))
        for m in re.finditer(r"batch \d+ done: \d+ processed, \d+ created, (\d+) credits", text)
    ]
    assert len(batch_credits) >= 6
    assert sum(batch_credits) == used
    assert lines[-1].endswith("Run completed")


@pytest.mark.parametrize("batch_size", [5, 20])
def test_the_estimate_holds_on_the_demo_data_for_small_and_default_batches(
    api: Api, batch_size: int
) -> None:
    # Clusters never span stage-1 batches, so smaller batches make more clusters (and
    # more of everything after them); the estimate must follow the site's batch size.
    site = api.site()
    assert ok(api.keywords(site, demo_keywords()), 201)["created"] == len(demo_keywords())
    config = {
        **CONFIG,
        "stage_1_batch_size": batch_size,
        "stage_2_batch_size": 20,
        "stage_4_batch_size": 20,
        "stage_5_batch_size": 20,
        "stage_6_batch_size": 40,
    }
    ok(api.put(f"{AUTOMATION}/update_config", config, site_id=site))
    before = ok(api.get(f"{AUTOMATION}/estimate", site_id=site))
    _, entry, _ = run_to_the_end(api, site)
    assert entry["status"] == "completed", entry
    used = entry["total_credits_used"]
    assert abs(before["estimated_credits"] - used) <= 0.1 * before["estimated_credits"]
    after = ok(api.get(f"{AUTOMATION}/estimate", site_id=site))
    assert before["current_balance"] - after["current_balance"] == used


# --- what the run made ---------------------------------------------------------------------


def test_what_a_run_made_is_listed_linked_paged_and_readable(api: Api) -> None:
    site = prepared_site(api)
    _, entry, _ = run_to_the_end(api, site)
    assert entry["status"] == "completed", entry

    made = {kind: everything(api, kind, site) for kind in LISTINGS}
    prompts = everything(api, "image_prompts", site)
    keywords = everything(api, "keywords", site)
    for kind, (_, parent_field) in LISTINGS.items():
        assert made[kind], kind
        for item in made[kind]:
            assert isinstance(item["id"], str)
            assert isinstance(item["status"], str)
            if parent_field:
                assert isinstance(item[parent_field], str), (kind, item)
    # Every item names the item it came from.
    ids = {kind: {i["id"] for i in made[kind]} for kind in LISTINGS}
    assert {i["cluster_id"] for i in made["ideas"]} == ids["clusters"]
    assert sorted(t["idea_id"] for t in made["tasks"]) == sorted(ids["ideas"])
    assert sorted(c["task_id"] for c in made["content"]) == sorted(ids["tasks"])
    assert {i["content_id"] for i in made["images"]} == ids["content"]
    assert {k["cluster_id"] for k in keywords} == ids["clusters"]
    assert len(made["images"]) == len(prompts)

    # Status filter: every article waits for review.
    content = made["content"]
    review = listing(api, "content", site, status="review", limit=1000)
    assert review["count"] == len(content) == len(review["results"])
    assert listing(api, "content", site, status="draft")["count"] == 0
    # Paging: the pages of two, in order, are the whole listing.
    assert len(content) >= 3
    pages: list[dict[str, Any]] = []
    for offset in range(0, len(content), 2):
        page = listing(api, "content", site, limit=2, offset=offset)
        assert page["count"] == len(content)
        assert len(page["results"]) == min(2, len(content) - offset)
        pages += page["results"]
    assert pages == content
    assert listing(api, "content", site, limit=2, offset=len(content))["results"] == []

    # One article, with its body and images; one image, as SVG.
    article = content[0]
    detail = ok(api.get(f"{WRITER}/content/{article['id']}", site_id=site))
    assert detail["id"] == article["id"]
    assert detail["task_id"] == article["task_id"]
    assert isinstance(detail["body"], str)
    assert len(detail["body"].split()) == detail["word_count"] >= 300
    own_images = [i["id"] for i in made["images"] if i["content_id"] == article["id"]]
    assert own_images
    assert sorted(detail["image_ids"]) == sorted(own_images)
    image = api.get(f"{WRITER}/images/{own_images[0]}/file", site_id=site)
    assert image.status_code == 200, image.text
    assert image.headers["content-type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(image.content)
    assert root.tag.rsplit("}", 1)[-1] == "svg"
    # Unknown ids are 404s with a JSON error.
    not_found(api.get(f"{WRITER}/content/no-such-article", site_id=site), "content_not_found")
    not_found(api.get(f"{WRITER}/images/no-such-image/file", site_id=site), "image_not_found")

    # The overview: nothing pending, and each stage's done count is what was made.
    overview = ok(api.get(f"{AUTOMATION}/pipeline_overview", site_id=site))["stages"]
    assert [s["stage"] for s in overview] == [1, 2, 3, 4, 5, 6, 7]
    assert [s["name"] for s in overview] == [STAGE_NAMES[s] for s in Stage]
    assert [s["pending"] for s in overview] == [0] * 7
    assert [s["done"] for s in overview] == [
        len(keywords),
        len(made["clusters"]),
        len(made["ideas"]),
        len(made["tasks"]),
        len(content),
        len(prompts),
        review["count"],
    ]


def test_another_account_reads_none_of_a_run_or_its_content(api: Api, new_account: Any) -> None:
    site = prepared_site(api)
    run_id, entry, _ = run_to_the_end(api, site)
    assert entry["status"] == "completed", entry
    article = everything(api, "content", site)[0]
    image = everything(api, "images", site)[0]

    other: Api = new_account(name="Other")
    other.site("Other's own site")
    for kind in ("keywords", "clusters", "ideas", "tasks", "content", "image_prompts", "images"):
        base = PLANNER if kind in ("keywords", "clusters", "ideas") else WRITER
        not_found(other.get(f"{base}/{kind}", site_id=site), "site_not_found")
    not_found(other.get(f"{WRITER}/content/{article['id']}", site_id=site), "site_not_found")
    not_found(other.get(f"{WRITER}/images/{image['id']}/file", site_id=site), "site_not_found")
    for path in ("pipeline_overview", "current_processing", "current_run", "history", "estimate"):
        not_found(other.get(f"{AUTOMATION}/{path}", site_id=site), "site_not_found")
    not_found(other.get(f"{AUTOMATION}/logs", run_id=run_id), "run_not_found")
    # The owner still reads them.
    assert ok(api.get(f"{WRITER}/content/{article['id']}", site_id=site))["id"] == article["id"]


# --- the demo ------------------------------------------------------------------------------


def test_the_demo_runs_the_pipeline_to_the_review_gate(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOMATION_", "DATABASE_", "AMQP_"))
    }
    env["COLUMNS"] = "120"
    done = subprocess.run(
        [sys.executable, "-m", "automation.cli", "demo", "--data-dir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"Run [0-9a-f-]{36}: completed in [\d.]+ s", output), output
    assert "Review Gate" in output
    credits = re.search(
        r"Estimated (\d+) credits, used (\d+); the account was charged (\d+)\.", output
    )
    assert credits, output
    estimated, used, charged = (int(g) for g in credits.groups())
    assert used == charged > 0
    assert abs(estimated - used) <= 0.1 * estimated
    accuracy = re.search(r"Estimate accuracy: error ([+-][\d.]+)% \(used / estimated - 1\)", output)
    assert accuracy, output
    assert float(accuracy.group(1)) == pytest.approx((used / estimated - 1) * 100, abs=0.05)
