"""The read benchmark on the production stack: PostgreSQL and RabbitMQ, idle and busy.

``automation serve`` (every role in one process, as one ``serve`` of a production
deployment runs them) on a stack of its own (bench/stacks.py: a fresh schema, queue
prefix and events exchange, dropped afterwards), beside the baseline app with ``bare`` and
``naive_pg`` (the textbook read: a threadpool ``def``, a pooled psycopg SELECT of a JSON row,
a pydantic model) on the same PostgreSQL. Two phases, each measured as the embedded one:

* ``idle``: nothing else runs; ``settings.connections`` connections. Target: current_run
  and history at >= 0.5x ``bare``'s rps.
* ``busy``: a pipeline run of BUSY_KEYWORDS keywords (zero-cost AI, no stage delays) is going
  on another site of the same account; BUSY_CONNECTIONS connections. Target: current_run
  and history at p99 <= P99_TARGET_MS. The run must be running before every round and after
  the last, or the phase says so.
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bench.loadgen import Tool
from bench.read_measure import (
    TARGET_ENDPOINTS,
    finish,
    log,
    measure_rounds,
    preflight,
    print_rps_target,
    rps_target,
    table,
    warm_up,
)
from bench.read_setup import RUN_NOW, populate, service_endpoints, start_baseline
from bench.servers import automation_command, create_account, expect, free_port, serving
from bench.stacks import POSTGRES_URL, service_env, stack, unreachable

if TYPE_CHECKING:
    from bench.read_endpoints import Settings

BUSY_CONNECTIONS = 200
P99_TARGET_MS = 250.0
BUSY_KEYWORDS = 3000  # enough for the run to outlast the busy phase's rounds
BUSY_WARMUP_S = 1.0


class _Pipeline:
    """The busy site's run: started once, its progress read before every round."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )
        site = {"name": "busy", "timezone": "UTC"}
        self.site_id = expect(self.client.post("/api/v1/sites", json=site), 201)["site_id"]
        params = {"site_id": self.site_id}
        keywords = [f"busy keyword {i}" for i in range(BUSY_KEYWORDS)]
        planner = self.client.post(
            "/api/v1/planner/keywords", params=params, json={"keywords": keywords}
        )
        expect(planner, 201)
        delays = {"within_stage_delay": 0, "between_stage_delay": 0}
        config = self.client.put("/api/v1/automation/update_config", params=params, json=delays)
        expect(config, 200)
        self.checks: list[dict[str, Any]] = []

    def start(self) -> None:
        expect(self.client.post(RUN_NOW, params={"site_id": self.site_id}), 202)

    def check(self, _: int = 0) -> None:
        """Where the run is: status, stage, and items processed over all stages."""
        current = self.client.get(
            "/api/v1/automation/current_run", params={"site_id": self.site_id}
        )
        run = expect(current, 200)["run"] or {}
        processed = sum(stage["processed"] for stage in run.get("stages", []))
        self.checks.append(
            {"status": run.get("status"), "stage": run.get("current_stage"), "processed": processed}
        )
        stage = run.get("current_stage")
        log(f"pipeline run: {run.get('status')}, stage {stage}, {processed} items")

    @property
    def ran_throughout(self) -> bool:
        """Running at every check, and moving: more items processed at the last check."""
        running = bool(self.checks) and all(c["status"] == "running" for c in self.checks)
        return running and self.checks[-1]["processed"] > self.checks[0]["processed"]


def _p99_target(rows: list[dict[str, Any]], ran_throughout: bool) -> dict[str, Any]:
    return {
        row["endpoint"]: {
            "p99_ms": row["p99_ms"],
            "p99_ratio_to_bare": row["p99_ratio_to_bare"],
            "p99_ratio_to_naive": row.get("p99_ratio_to_naive"),
            "target_ms": P99_TARGET_MS,
            "met": ran_throughout and row["p99_ms"] <= P99_TARGET_MS,
        }
        for row in rows
        if row["endpoint"] in TARGET_ENDPOINTS
    }


def _report(idle: dict[str, Any], busy: dict[str, Any]) -> None:
    print(f"production stack, idle ({idle['connections']} connections)")
    print(table(idle["results"]))
    print()
    print_rps_target(idle["target"], "production, idle")
    print()
    print(f"production stack, during a pipeline run ({BUSY_CONNECTIONS} connections)")
    print(table(busy["results"]))
    print()
    for name, verdict in busy["target"].items():
        state = "met" if verdict["met"] else "NOT met"
        print(
            f"target {name} p99 <= {P99_TARGET_MS:g} ms during a run: {state} "
            f"({verdict['p99_ms']:.0f} ms; {verdict['p99_ratio_to_bare']}x bare's p99, "
            f"{verdict['p99_ratio_to_naive']}x naive_pg's)"
        )
    checks = busy["pipeline_checks"]
    items = checks[-1]["processed"] - checks[0]["processed"] if checks else 0
    print(
        f"pipeline run during the rounds: {items} items processed, running and moving throughout: "
        f"{busy['pipeline_ran_throughout']}"
    )
    print()


def run(tool: Tool, settings: Settings, workdir: Path) -> dict[str, Any]:
    """Both phases; a dict for the JSON, with ``problems`` (empty when valid)."""
    problems = unreachable()
    if problems:
        return {"problems": problems}
    with stack("production", workdir) as stack_settings, ExitStack() as servers:
        schema = stack_settings.database_schema
        assert schema is not None
        # A stopping serve hands in-flight batches back at once: the stack is dropped next.
        env = service_env(stack_settings) | {"AUTOMATION_SHUTDOWN_GRACE": "1"}
        endpoints = start_baseline(servers, workdir, (POSTGRES_URL, schema))
        token = create_account(env)
        port = free_port()
        command = automation_command("serve", "--port", str(port))
        log_path = workdir / "service-production.log"
        server = servers.enter_context(
            serving("automation serve (production)", command, port, env, log_path, "/healthz")
        )
        endpoints += service_endpoints(server, token, populate(server.base_url, token))
        pipeline = _Pipeline(server.base_url, token)
        log(f"production stack set up (schema {schema}); idle phase")
        preflight(endpoints)
        warm_up(tool, endpoints, settings.connections, settings.warmup_s)
        measure_rounds(tool, endpoints, settings.rounds, settings.duration_s, settings.connections)
        idle_rows = finish(endpoints)
        log(f"busy phase: a pipeline run of {BUSY_KEYWORDS} keywords")
        busy_endpoints = [dataclasses.replace(e, rounds=[]) for e in endpoints]
        pipeline.start()
        warm_up(tool, busy_endpoints, BUSY_CONNECTIONS, BUSY_WARMUP_S)
        measure_rounds(
            tool,
            busy_endpoints,
            settings.rounds,
            settings.duration_s,
            BUSY_CONNECTIONS,
            before_round=pipeline.check,
        )
        pipeline.check()
        busy_rows = finish(busy_endpoints)
        pipeline.client.close()
    idle = {
        "connections": settings.connections,
        "results": idle_rows,
        "target": rps_target(idle_rows),
    }
    busy = {
        "connections": BUSY_CONNECTIONS,
        "pipeline_keywords": BUSY_KEYWORDS,
        "pipeline_checks": pipeline.checks,
        "pipeline_ran_throughout": pipeline.ran_throughout,
        "results": busy_rows,
        "target": _p99_target(busy_rows, pipeline.ran_throughout),
    }
    _report(idle, busy)
    if not pipeline.ran_throughout:
        problems.append("the pipeline run was not running and moving throughout the busy rounds")
    return {"layout": "automation serve", "idle": idle, "busy": busy, "problems": problems}
