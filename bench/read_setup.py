"""Setting up what the read benchmark measures: the baseline app's endpoints, and a site
of the service with an active run and a history, made through its own CLI and API."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.baseline_app import SITE_ID as NAIVE_SITE_ID
from bench.read_measure import (
    PAST_RUNS,
    Endpoint,
    any_body,
    is_current_run,
    is_history,
    log,
)
from bench.servers import Server, clean_env, expect, free_port, serving

PROJECT_DIR = Path(__file__).resolve().parent.parent
STAGE_DELAY_S = 3600
KEYWORDS = [f"bench keyword {i}" for i in range(50)]
RUN_NOW = "/api/v1/automation/run_now"


def start_baseline(
    stack: ExitStack, workdir: Path, postgres: tuple[str, str] | None = None
) -> list[Endpoint]:
    """``bare`` and the textbook read: ``naive`` on SQLite, or with ``postgres`` (a DSN
    and a schema) ``naive_pg`` on PostgreSQL."""
    port = free_port()
    command = [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]
    command += ["--db", str(workdir / "naive.db")]
    if postgres is not None:
        command += ["--postgres", postgres[0], "--schema", postgres[1]]
    # The working directory is the project, so ``-m bench.baseline_app`` imports.
    server = stack.enter_context(
        serving(
            "baseline app",
            command,
            port,
            clean_env({}),
            workdir / f"baseline-{port}.log",
            "/bare",
            cwd=PROJECT_DIR,
        )
    )
    bare = Endpoint("bare", "async def returning a constant dict", server, "/bare", {}, any_body)
    if postgres is None:
        naive = Endpoint(
            "naive",
            "sync def (threadpool): sqlite3 connect + SELECT of a JSON row + pydantic model",
            server,
            f"/naive?site_id={NAIVE_SITE_ID}",
            {},
            is_current_run,
        )
    else:
        naive = Endpoint(
            "naive_pg",
            "sync def (threadpool): pooled psycopg SELECT of a JSON row + pydantic model",
            server,
            f"/naive_pg?site_id={NAIVE_SITE_ID}",
            {},
            is_current_run,
        )
    return [bare, naive]


def populate(base_url: str, token: str) -> str:
    """A site with PAST_RUNS cancelled runs and one running run; returns its id."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
        site = expect(client.post("/api/v1/sites", json={"name": "bench", "timezone": "UTC"}), 201)
        site_id: str = site["site_id"]
        keywords = {"keywords": KEYWORDS}
        params = {"site_id": site_id}
        expect(client.post("/api/v1/planner/keywords", params=params, json=keywords), 201)
        # Long delays keep the running run where it starts, so its document (and so the
        # body measured) does not change, and the orchestrator and workers stay idle.
        delays = {"within_stage_delay": STAGE_DELAY_S, "between_stage_delay": STAGE_DELAY_S}
        configured = client.put("/api/v1/automation/update_config", params=params, json=delays)
        if configured.status_code != 200:
            log(f"could not set stage delays ({configured.status_code}): {configured.text}")
        for _ in range(PAST_RUNS):
            run = expect(client.post(RUN_NOW, params=params), 202)
            cancel = client.post("/api/v1/automation/cancel", params={"run_id": run["run_id"]})
            expect(cancel, 200)
        expect(client.post(RUN_NOW, params=params), 202)
    return site_id


def service_endpoints(server: Server, token: str, site_id: str) -> list[Endpoint]:
    """current_run and history of a site made by ``populate``."""
    headers = {"Authorization": f"Bearer {token}"}
    query = f"?site_id={site_id}"
    return [
        Endpoint(
            "current_run",
            "the site's active run (Bearer token)",
            server,
            "/api/v1/automation/current_run" + query,
            headers,
            is_current_run,
        ),
        Endpoint(
            "history",
            "the site's last runs (Bearer token)",
            server,
            "/api/v1/automation/history" + query,
            headers,
            is_history,
        ),
    ]
