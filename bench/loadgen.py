"""Closed-loop HTTP/1.1 keep-alive load: ``wrk`` when it is on PATH, else a Python client.

Both generators work the same way: N connections, each sending its next request as soon as
the previous answer has arrived, for a fixed duration. Both count every answer whose status
is not exactly 200, and socket errors, so a run that served errors can be told invalid.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

Tool = Literal["wrk", "python"]


@dataclass(frozen=True)
class LoadResult:
    tool: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_200: int
    socket_errors: int
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.requests > 0 and self.non_200 == 0 and self.socket_errors == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "valid": self.valid}


def choose_tool(preferred: str = "auto") -> Tool:
    if preferred == "python":
        return "python"
    if shutil.which("wrk"):
        return "wrk"
    if preferred == "wrk":
        raise SystemExit("wrk is not on PATH (apt-get install -y wrk), or use --loadgen python")
    return "python"


def run_load(
    tool: Tool,
    url: str,
    headers: Mapping[str, str],
    connections: int,
    duration_s: float,
) -> LoadResult:
    if tool == "wrk":
        return run_wrk(url, headers, connections, duration_s)
    return run_python(url, headers, connections, duration_s)


# --- wrk ---------------------------------------------------------------------------------

# Counts answers whose status is not exactly 200 (wrk's own count skips 3xx), and prints
# exact figures in microseconds, so nothing has to be parsed from rounded human units.
_WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f non200=%d "
      .. "connect=%d read=%d write=%d timeout=%d status=%d\\n",
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    bad, e.connect, e.read, e.write, e.timeout, e.status))
end
"""

_BENCH_LINE = re.compile(r"^BENCH (.*)$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk_latency(output: str) -> dict[str, float]:
    """p50/p99 in ms from ``wrk --latency``'s "Latency Distribution" block."""
    return {
        f"p{pct}_ms": float(value) * _UNIT_MS[unit]
        for pct, value, unit in _PERCENTILE.findall(output)
    }


def run_wrk(
    url: str, headers: Mapping[str, str], connections: int, duration_s: float
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    try:
        seconds = max(1, round(duration_s))  # wrk takes whole seconds only
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        command += ["-s", script.name, "--timeout", "5s"]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        command.append(url)
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    match = _BENCH_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    figures = {k: float(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    # Cross-check: the human-readable distribution must agree with the exact figures.
    shown = parse_wrk_latency(done.stdout)
    if "p50_ms" not in shown:
        raise RuntimeError(f"no latency distribution in wrk's output:\n{done.stdout}")
    requests = int(figures["requests"])
    measured_s = figures["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        connections=connections,
        duration_s=round(measured_s, 3),
        requests=requests,
        rps=requests / measured_s if measured_s else 0.0,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        non_200=int(figures["non200"]),
        socket_errors=int(
            figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
        ),
    )


# --- Python ------------------------------------------------------------------------------


class _Run:
    """What the connections of one load run share."""

    def __init__(self, request: bytes, deadline_ns: int) -> None:
        self.request = request
        self.deadline_ns = deadline_ns
        self.latencies = array("q")
        self.statuses: Counter[int] = Counter()
        self.socket_errors = 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request, its whole answer, the next request."""

    def __init__(self, run: _Run, finished: asyncio.Future[None]) -> None:
        self.run = run
        self.finished = finished
        self.buffer = bytearray()
        self.body_end: int | None = None
        self.status = 0
        self.sent_ns = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(self.run.request)

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.finished.done():
            self.finished.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self._received(data)
        except Exception:  # noqa: BLE001 - a malformed answer: count it, never hang the run
            self.run.socket_errors += 1
            self._finish()

    def _received(self, data: bytes) -> None:
        self.buffer += data
        if self.body_end is None:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).lower()
            length = _content_length(head)
            if length is None or not head.startswith(b"http/1.1 "):
                self.run.socket_errors += 1  # no Content-Length: this client can't frame it
                self._finish()
                return
            self.status = int(head[9:12])
            self.body_end = head_end + 4 + length
        if len(self.buffer) < self.body_end:
            return
        now = time.perf_counter_ns()
        del self.buffer[: self.body_end]
        self.body_end = None
        if now > self.run.deadline_ns:
            self._finish()  # answered after the end: not counted, like wrk
            return
        self.run.latencies.append(now - self.sent_ns)
        self.run.statuses[self.status] += 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            if time.perf_counter_ns() < self.run.deadline_ns:
                self.run.socket_errors += 1
            self.finished.set_result(None)


def _content_length(head: bytes) -> int | None:
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        return None
    start += len(b"\r\ncontent-length:")
    end = head.find(b"\r\n", start)
    return int(head[start : end if end >= 0 else len(head)])


def _request_bytes(url: str, headers: Mapping[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode()


def _percentile(ordered: array[int], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index] / 1e6


async def _python_load(
    url: str, headers: Mapping[str, str], connections: int, duration_s: float
) -> LoadResult:
    host, port, request = _request_bytes(url, headers)
    loop = asyncio.get_running_loop()
    started = time.perf_counter_ns()
    run = _Run(request, started + int(duration_s * 1e9))
    finished: list[asyncio.Future[None]] = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        finished.append(done)
        try:
            await loop.create_connection(partial(_Connection, run, done), host, port)
        except OSError:
            run.socket_errors += 1
            done.set_result(None)
    await asyncio.wait_for(asyncio.gather(*finished), timeout=duration_s + 10)
    measured_s = (run.deadline_ns - started) / 1e9
    ordered = array("q", sorted(run.latencies))
    requests = len(ordered)
    return LoadResult(
        tool="python",
        connections=connections,
        duration_s=round(measured_s, 3),
        requests=requests,
        rps=requests / measured_s,
        p50_ms=_percentile(ordered, 50),
        p99_ms=_percentile(ordered, 99),
        non_200=sum(n for status, n in run.statuses.items() if status != 200),
        socket_errors=run.socket_errors,
        statuses={str(status): n for status, n in sorted(run.statuses.items())},
    )


def _runner() -> Callable[[Coroutine[Any, Any, LoadResult]], LoadResult]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def run_python(
    url: str, headers: Mapping[str, str], connections: int, duration_s: float
) -> LoadResult:
    return _runner()(_python_load(url, headers, connections, duration_s))
