"""Measuring read endpoints: what the read benchmark's phases share.

An endpoint is a URL of a server under test with the answer it must give; each phase
checks every endpoint once, warms each up, measures them in interleaved rounds (so a slow
spell of the machine falls on all of them alike), checks them again, and summarises each
as one row with its ratios to the floors measured in the same phase (``bare``, and the
textbook read, ``naive`` or ``naive_pg``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

import httpx

from bench.loadgen import Tool, run_load
from bench.servers import Server, cpu_seconds

PAST_RUNS = 20  # runs the read site's history holds (the endpoint lists the last 20)
TARGET_RATIO = 0.5  # the project tracks: current_run and history >= 0.5x bare's rps
TARGET_ENDPOINTS = ("current_run", "history")
FLOOR = "bare"
NAIVE = ("naive", "naive_pg")  # the textbook read of the phase, whichever it has

Check = Callable[[Any], str | None]


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


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def any_body(_: Any) -> str | None:
    return None


def is_current_run(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("run"), dict):
        return "no active run in the body"
    return None


def is_history(body: Any) -> str | None:
    runs = body.get("runs") if isinstance(body, dict) else None
    if not isinstance(runs, list) or len(runs) < PAST_RUNS:
        return f"history lists fewer than {PAST_RUNS} runs"
    return None


def problem(endpoint: Endpoint) -> tuple[str | None, int]:
    """Why one request's answer is not what the benchmark means to measure, and its size."""
    response = httpx.get(endpoint.url, headers=endpoint.headers, timeout=10.0)
    text = response.text[:500]
    if response.status_code != 200:
        return f"GET {endpoint.url} answered {response.status_code}: {text}", 0
    found = endpoint.check(response.json())
    if found:
        return f"GET {endpoint.url}: {found}: {text}", len(response.content)
    return None, len(response.content)


def preflight(endpoints: Sequence[Endpoint]) -> None:
    for endpoint in endpoints:
        found, endpoint.body_bytes = problem(endpoint)
        if found:
            raise RuntimeError(found)


def warm_up(tool: Tool, endpoints: Sequence[Endpoint], connections: int, seconds: float) -> None:
    for endpoint in endpoints:
        if seconds > 0:
            warm = run_load(tool, endpoint.url, endpoint.headers, connections, seconds)
            if not warm.valid:
                log(f"{endpoint.name}: warm-up saw errors: {warm.as_dict()}")


def measure(tool: Tool, endpoint: Endpoint, connections: int, duration_s: float) -> None:
    """One round of closed-loop load on one endpoint, with the server's CPU time."""
    pid = endpoint.server.process.pid
    cpu_before = cpu_seconds(pid)
    load = run_load(tool, endpoint.url, endpoint.headers, connections, duration_s)
    cpu_after = cpu_seconds(pid)
    cpu_us: float | None = None
    if cpu_before is not None and cpu_after is not None and load.requests:
        cpu_us = (cpu_after - cpu_before) * 1e6 / load.requests
    endpoint.rounds.append({**load.as_dict(), "server_cpu_us_per_request": cpu_us})
    log(
        f"{endpoint.name:<12} {load.rps:>8.0f} rps  p50 {load.p50_ms:6.2f} ms  "
        f"p99 {load.p99_ms:6.2f} ms  server CPU/request {fmt(cpu_us, '.0f')} us  "
        f"non-200 {load.non_200}  socket errors {load.socket_errors}"
    )


def rps_target(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """current_run and history against TARGET_RATIO x bare's rps."""
    return {
        row["endpoint"]: {
            "rps_ratio_to_bare": row["rps_ratio_to_bare"],
            "cpu_ratio_to_bare": row["cpu_ratio_to_bare"],
            "target": TARGET_RATIO,
            "met": (row["rps_ratio_to_bare"] or 0.0) >= TARGET_RATIO,
        }
        for row in rows
        if row["endpoint"] in TARGET_ENDPOINTS
    }


def print_rps_target(target: dict[str, Any], where: str) -> None:
    for name, verdict in target.items():
        state = "met" if verdict["met"] else "NOT met"
        print(
            f"target {name} >= {TARGET_RATIO}x bare rps ({where}): {state} "
            f"({verdict['rps_ratio_to_bare']}x by rps, {verdict['cpu_ratio_to_bare']}x by CPU)"
        )


def measure_rounds(
    tool: Tool,
    endpoints: Sequence[Endpoint],
    rounds: int,
    duration_s: float,
    connections: int,
    before_round: Callable[[int], None] | None = None,
) -> None:
    """``rounds`` interleaved rounds over ``endpoints`` (``before_round(n)`` first)."""
    for number in range(rounds):
        if before_round is not None:
            before_round(number)
        log(f"round {number + 1} of {rounds}, {connections} connections")
        for endpoint in endpoints:
            measure(tool, endpoint, connections, duration_s)


def summary(endpoint: Endpoint) -> dict[str, Any]:
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


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 3) if top and bottom else None


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row against the phase's floors: rps and p99 over ``bare``'s and the naive
    read's, and ``bare``'s CPU per request over the row's (rps if each had a core)."""
    bare = next(row for row in rows if row["endpoint"] == FLOOR)
    naive = next((row for row in rows if row["endpoint"] in NAIVE), None)
    for row in rows:
        row["rps_ratio_to_bare"] = _ratio(row["rps"], bare["rps"])
        row["p99_ratio_to_bare"] = _ratio(row["p99_ms"], bare["p99_ms"])
        row["cpu_ratio_to_bare"] = _ratio(
            bare["server_cpu_us_per_request"], row["server_cpu_us_per_request"]
        )
        if naive is not None:
            row["rps_ratio_to_naive"] = _ratio(row["rps"], naive["rps"])
            row["p99_ratio_to_naive"] = _ratio(row["p99_ms"], naive["p99_ms"])


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'endpoint':<12} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'x bare':>7} "
        f"{'x naive':>8} {'p99/bare':>9} {'p99/naive':>10} {'cpu us/req':>11} "
        f"{'x bare(cpu)':>12} {'non-200':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['endpoint']:<12} {row['rps']:>8.0f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {fmt(row['rps_ratio_to_bare'], '.2f'):>7} "
            f"{fmt(row.get('rps_ratio_to_naive'), '.2f'):>8} "
            f"{fmt(row['p99_ratio_to_bare'], '.2f'):>9} "
            f"{fmt(row.get('p99_ratio_to_naive'), '.2f'):>10} "
            f"{fmt(row['server_cpu_us_per_request'], '.0f'):>11} "
            f"{fmt(row['cpu_ratio_to_bare'], '.2f'):>12} "
            f"{row['non_200'] + row['socket_errors']:>8d}"
        )
    return "\n".join(lines)


def finish(endpoints: Sequence[Endpoint]) -> list[dict[str, Any]]:
    """The phase's rows, with ratios, each checked again after the load."""
    after = {e.name: problem(e)[0] for e in endpoints}
    rows = [summary(endpoint) for endpoint in endpoints]
    add_ratios(rows)
    for row in rows:
        row["problem_after_load"] = after[row["endpoint"]]
        row["valid"] = row["valid"] and row["problem_after_load"] is None
    return rows
