"""The read benchmark: the service's two hot read endpoints against two baselines.

Measured on the same machine, with the same server settings and load generator:

* ``bare``: ``GET /bare`` of bench.baseline_app, an ``async def`` returning a constant dict;
* ``naive``: ``GET /naive`` of bench.baseline_app, a threadpool ``def`` over sqlite3 and a
  pydantic response model (``naive_pg`` on the production stack: the same over psycopg);
* ``current_run`` and ``history``: the service (``automation serve``), with a Bearer token,
  for a site with an active run and ~20 past runs.

On the embedded stack (SQLite), then on the production stack (bench/read_production.py:
PostgreSQL and RabbitMQ, idle and while a pipeline run is going). In each phase both
servers run side by side (one idles while the other is measured); every endpoint is warmed
up once, then measured in interleaved rounds, so a slow spell of the machine falls on all
endpoints alike rather than on one.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import read_production
from bench.loadgen import Tool, choose_tool
from bench.read_measure import (
    PAST_RUNS,
    finish,
    log,
    measure_rounds,
    preflight,
    print_rps_target,
    rps_target,
    table,
    warm_up,
)
from bench.read_setup import populate, service_endpoints, start_baseline
from bench.servers import (
    UVICORN_SETTINGS,
    automation_command,
    clean_env,
    create_account,
    free_port,
    serving,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "read_endpoints.json"
STACKS = ("embedded", "production")


@dataclass(frozen=True)
class Settings:
    duration_s: float = 5.0
    warmup_s: float = 2.0
    rounds: int = 2
    connections: int = 64
    loadgen: str = "auto"
    output: Path = RESULTS_PATH
    stacks: tuple[str, ...] = STACKS  # the read benchmark's stacks (others ignore it)


def _embedded(tool: Tool, settings: Settings, workdir: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        endpoints = start_baseline(stack, workdir)
        data_dir = workdir / "service-data"
        data_dir.mkdir()
        env = clean_env({"AUTOMATION_DATA_DIR": str(data_dir)})
        token = create_account(env)
        port = free_port()
        command = automation_command("serve", "--port", str(port))
        server = stack.enter_context(
            serving("automation serve", command, port, env, workdir / "service.log", "/healthz")
        )
        started = time.perf_counter()
        site_id = populate(server.base_url, token)
        elapsed = time.perf_counter() - started
        log(f"service set up: 1 site, {PAST_RUNS} cancelled runs + 1 running, in {elapsed:.1f} s")
        endpoints += service_endpoints(server, token, site_id)
        preflight(endpoints)
        warm_up(tool, endpoints, settings.connections, settings.warmup_s)
        measure_rounds(tool, endpoints, settings.rounds, settings.duration_s, settings.connections)
        # The same answer as before the load (e.g. the run is still active) after it.
        rows = finish(endpoints)
    return {"results": rows, "target": rps_target(rows)}


def _problems(rows: list[dict[str, Any]]) -> list[str]:
    found = [f"{row['endpoint']}: non-200 or socket errors" for row in rows if not row["valid"]]
    return found + [
        f"{row['endpoint']} after the load: {row['problem_after_load']}"
        for row in rows
        if row["problem_after_load"]
    ]


def run(settings: Settings) -> int:
    """Run the whole read benchmark; prints the tables, writes the JSON; 1 if invalid."""
    tool = choose_tool(settings.loadgen)
    log(
        f"load generator: {tool}, {settings.connections} connections; per endpoint "
        f"{settings.warmup_s:g} s warm-up, then {settings.rounds} x {settings.duration_s:g} s"
    )
    began = time.perf_counter()
    load_before = os.getloadavg()
    result: dict[str, Any] = {"benchmark": "read_endpoints"}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        if "embedded" in settings.stacks:
            embedded = _embedded(tool, settings, Path(tmp))
            result |= embedded  # "results" and "target", as before the production stack
            problems += _problems(embedded["results"])
            print(table(embedded["results"]))
            print()
            print_rps_target(embedded["target"], "embedded")
            print()
        if "production" in settings.stacks:
            production = read_production.run(tool, settings, Path(tmp))
            result["production"] = production
            problems += production["problems"]
            for phase in ("idle", "busy"):
                problems += _problems(production.get(phase, {}).get("results", []))
    result |= {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "valid": not problems,
        "problems": problems,
        "settings": {
            "load_generator": tool,
            "connections": settings.connections,
            "warmup_s": settings.warmup_s,
            "duration_s": settings.duration_s,
            "rounds": settings.rounds,
            "stacks": list(settings.stacks),
            "uvicorn": UVICORN_SETTINGS,
            "service": "automation serve: embedded SQLite in a fresh AUTOMATION_DATA_DIR; "
            "production: PostgreSQL and RabbitMQ, a schema and queue prefix of its own",
            "runs_created": PAST_RUNS + 1,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(result, indent=2) + "\n")
    for found in problems:
        print(f"INVALID: {found}")
    print(f"written: {settings.output} ({result['elapsed_s']} s)")
    return 0 if not problems else 1
