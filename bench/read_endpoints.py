"""The read benchmark: the service's two hot read endpoints against two baselines.

Measured on the same machine, with the same server settings and load generator:

* ``bare``: ``GET /bare`` of bench.baseline_app, an ``async def`` returning a constant dict;
* ``naive``: ``GET /naive`` of bench.baseline_app, a threadpool ``def`` over sqlite3 and a
  pydantic response model;
* ``current_run`` and ``history``: the service (``automation serve``, embedded SQLite),
  with a Bearer token, for a site with an active run and ~20 past runs.

Both servers run side by side (one idles while the other is measured); every endpoint is
warmed up once, then measured in interleaved rounds, so a slow spell of the machine falls
on all endpoints alike rather than on one.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import httpx

from bench.baseline_app import SITE_ID as NAIVE_SITE_ID
from bench.loadgen import Tool, choose_tool, run_load
from bench.servers import (
    UVICORN_SETTINGS,
    Server,
    automation_command,
    clean_env,
    cpu_seconds,
    create_account,
    expect,
    free_port,
    serving,
)

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "read_endpoints.json"
TARGET_RATIO = 0.5  # the project tracks: current_run and history >= 0.5x bare's rps
TARGET_ENDPOINTS = ("current_run", "history")
PAST_RUNS = 20
STAGE_DELAY_S = 3600
KEYWORDS = [f"bench keyword {i}" for i in range(50)]

Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Settings:
    duration_s: float = 5.0
    warmup_s: float = 2.0
    rounds: int = 2
    connections: int = 64
    loadgen: str = "auto"
    output: Path = RESULTS_PATH


@dataclass
class Endpoint:
    name: str
    description: str
    server: Server
    path: str
    headers: dict[str, str]
    check: Check
    body_bytes: int = 0
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.base_url + self.path


def _log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


# --- the servers, and setting the service up through its own CLI and API ------------------


def _populate(base_url: str, token: str) -> str:
    """A site with PAST_RUNS cancelled runs and one running run; returns its id."""
    headers = {"Authorization": f"Bearer {token}"}
    run_now = "/api/v1/automation/run_now"
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
            _log(f"could not set stage delays ({configured.status_code}): {configured.text}")
        for _ in range(PAST_RUNS):
            run = expect(client.post(run_now, params=params), 202)
            cancel = client.post("/api/v1/automation/cancel", params={"run_id": run["run_id"]})
            expect(cancel, 200)
        expect(client.post(run_now, params=params), 202)
    return site_id


def _start_baseline(stack: ExitStack, workdir: Path) -> list[Endpoint]:
    port = free_port()
    command = [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]
    command += ["--db", str(workdir / "naive.db")]
    # The working directory is the project, so ``-m bench.baseline_app`` imports.
    server = stack.enter_context(
        serving(
            "baseline app",
            command,
            port,
            clean_env({}),
            workdir / "baseline.log",
            "/bare",
            cwd=PROJECT_DIR,
        )
    )
    return [
        Endpoint("bare", "async def returning a constant dict", server, "/bare", {}, _any),
        Endpoint(
            "naive",
            "sync def (threadpool): sqlite3 connect + SELECT of a JSON row + pydantic model",
            server,
            f"/naive?site_id={NAIVE_SITE_ID}",
            {},
            _is_current_run,
        ),
    ]


def _start_service(stack: ExitStack, workdir: Path) -> list[Endpoint]:
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
    site_id = _populate(server.base_url, token)
    elapsed = time.perf_counter() - started
    _log(f"service set up: 1 site, {PAST_RUNS} cancelled runs + 1 running, in {elapsed:.1f} s")
    headers = {"Authorization": f"Bearer {token}"}
    query = f"?site_id={site_id}"
    return [
        Endpoint(
            "current_run",
            "the site's active run (Bearer token)",
            server,
            "/api/v1/automation/current_run" + query,
            headers,
            _is_current_run,
        ),
        Endpoint(
            "history",
            "the site's last runs (Bearer token)",
            server,
            "/api/v1/automation/history" + query,
            headers,
            _is_history,
        ),
    ]


# --- measuring ---------------------------------------------------------------------------


def _any(_: Any) -> str | None:
    return None


def _is_current_run(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("run"), dict):
        return "no active run in the body"
    return None


def _is_history(body: Any) -> str | None:
    runs = body.get("runs") if isinstance(body, dict) else None
    if not isinstance(runs, list) or len(runs) < PAST_RUNS:
        return f"history lists fewer than {PAST_RUNS} runs"
    return None


def _problem(endpoint: Endpoint) -> tuple[str | None, int]:
    """Why one request's answer is not what the benchmark means to measure, and its size."""
    response = httpx.get(endpoint.url, headers=endpoint.headers, timeout=10.0)
    text = response.text[:500]
    if response.status_code != 200:
        return f"GET {endpoint.url} answered {response.status_code}: {text}", 0
    problem = endpoint.check(response.json())
    if problem:
        return f"GET {endpoint.url}: {problem}: {text}", len(response.content)
    return None, len(response.content)


def _preflight(endpoint: Endpoint) -> None:
    problem, endpoint.body_bytes = _problem(endpoint)
    if problem:
        raise RuntimeError(problem)


def _measure(tool: Tool, endpoint: Endpoint, settings: Settings) -> None:
    pid = endpoint.server.process.pid
    cpu_before = cpu_seconds(pid)
    load = run_load(tool, endpoint.url, endpoint.headers, settings.connections, settings.duration_s)
    cpu_after = cpu_seconds(pid)
    cpu_us: float | None = None
    if cpu_before is not None and cpu_after is not None and load.requests:
        cpu_us = (cpu_after - cpu_before) * 1e6 / load.requests
    endpoint.rounds.append({**load.as_dict(), "server_cpu_us_per_request": cpu_us})
    _log(
        f"{endpoint.name:<12} {load.rps:>8.0f} rps  p50 {load.p50_ms:6.2f} ms  "
        f"p99 {load.p99_ms:6.2f} ms  server CPU/request {_fmt(cpu_us, '.0f')} us  "
        f"non-200 {load.non_200}  socket errors {load.socket_errors}"
    )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


# --- reporting ---------------------------------------------------------------------------


def _summary(endpoint: Endpoint) -> dict[str, Any]:
    """Requests over measured time for rps; the rounds' mean for latencies and CPU."""
    rounds = endpoint.rounds
    requests = sum(r["requests"] for r in rounds)
    seconds = sum(r["duration_s"] for r in rounds)
    cpu = [r["server_cpu_us_per_request"] for r in rounds]
    return {
        "endpoint": endpoint.name,
        "description": endpoint.description,
        "path": endpoint.path.split("?")[0],
        "body_bytes": endpoint.body_bytes,
        "requests": requests,
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": round(fmean(r["p50_ms"] for r in rounds), 3),
        "p99_ms": round(fmean(r["p99_ms"] for r in rounds), 3),
        "server_cpu_us_per_request": None if None in cpu else round(fmean(cpu), 1),
        "non_200": sum(r["non_200"] for r in rounds),
        "socket_errors": sum(r["socket_errors"] for r in rounds),
        "valid": all(r["valid"] for r in rounds),
        "rounds": rounds,
    }


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    bare = next(row for row in rows if row["endpoint"] == "bare")
    for row in rows:
        row["rps_ratio_to_bare"] = round(row["rps"] / bare["rps"], 3) if bare["rps"] else None
        cpu, bare_cpu = row["server_cpu_us_per_request"], bare["server_cpu_us_per_request"]
        # The same ratio from server CPU time: what rps would be with a whole core each.
        row["cpu_ratio_to_bare"] = round(bare_cpu / cpu, 3) if cpu and bare_cpu else None


def _table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'endpoint':<12} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'x bare':>7} "
        f"{'cpu us/req':>11} {'x bare(cpu)':>12} {'non-200':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['endpoint']:<12} {row['rps']:>8.0f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {_fmt(row['rps_ratio_to_bare'], '.2f'):>7} "
            f"{_fmt(row['server_cpu_us_per_request'], '.0f'):>11} "
            f"{_fmt(row['cpu_ratio_to_bare'], '.2f'):>12} "
            f"{row['non_200'] + row['socket_errors']:>8d}"
        )
    return "\n".join(lines)


def run(settings: Settings) -> int:
    """Run the whole read benchmark; prints the table, writes the JSON; 1 if invalid."""
    tool = choose_tool(settings.loadgen)
    _log(
        f"load generator: {tool}, {settings.connections} connections; per endpoint "
        f"{settings.warmup_s:g} s warm-up, then {settings.rounds} x {settings.duration_s:g} s"
    )
    began = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        endpoints = _start_baseline(stack, workdir) + _start_service(stack, workdir)
        for endpoint in endpoints:
            _preflight(endpoint)
            if settings.warmup_s > 0:
                warm = run_load(
                    tool, endpoint.url, endpoint.headers, settings.connections, settings.warmup_s
                )
                if not warm.valid:
                    _log(f"{endpoint.name}: warm-up saw errors: {warm.as_dict()}")
        for round_number in range(settings.rounds):
            _log(f"round {round_number + 1} of {settings.rounds}")
            for endpoint in endpoints:
                _measure(tool, endpoint, settings)
        # The same answer as before the load (e.g. the run is still active) after it.
        problems = {e.name: p for e in endpoints if (p := _problem(e)[0]) is not None}
    rows = [_summary(endpoint) for endpoint in endpoints]
    _add_ratios(rows)
    for row in rows:
        row["problem_after_load"] = problems.get(row["endpoint"])
        row["valid"] = row["valid"] and row["problem_after_load"] is None
    valid = all(row["valid"] for row in rows)
    target = {
        row["endpoint"]: {
            "rps_ratio_to_bare": row["rps_ratio_to_bare"],
            "cpu_ratio_to_bare": row["cpu_ratio_to_bare"],
            "target": TARGET_RATIO,
            "met": (row["rps_ratio_to_bare"] or 0.0) >= TARGET_RATIO,
        }
        for row in rows
        if row["endpoint"] in TARGET_ENDPOINTS
    }
    result = {
        "benchmark": "read_endpoints",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "valid": valid,
        "settings": {
            "load_generator": tool,
            "connections": settings.connections,
            "warmup_s": settings.warmup_s,
            "duration_s": settings.duration_s,
            "rounds": settings.rounds,
            "uvicorn": UVICORN_SETTINGS,
            "service": "automation serve, embedded SQLite in a fresh AUTOMATION_DATA_DIR",
            "runs_created": PAST_RUNS + 1,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "results": rows,
        "target": target,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(result, indent=2) + "\n")

    print(_table(rows))
    print()
    for name, verdict in target.items():
        state = "met" if verdict["met"] else "NOT met"
        print(
            f"target {name} >= {TARGET_RATIO}x bare rps: {state} "
            f"({verdict['rps_ratio_to_bare']}x by rps, {verdict['cpu_ratio_to_bare']}x by CPU)"
        )
    if not valid:
        print("INVALID: some responses were not 200 or sockets failed; see the JSON for counts")
    for name, problem in problems.items():
        print(f"INVALID: {name} after the load: {problem}")
    print(f"written: {settings.output} ({result['elapsed_s']} s)")
    return 0 if valid else 1
