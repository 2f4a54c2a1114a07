"""Starting and stopping the servers under test, each in a subprocess of its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# uvicorn settings every server in the benchmark runs with (automation.roles uses these too).
UVICORN_SETTINGS = {
    "workers": 1,
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_level": "warning",
    "host": "127.0.0.1",
}

# Settings that would point the service away from its embedded SQLite default.
_SERVICE_ENV_DROPPED = ("DATABASE_URL", "AMQP_URL", "AUTOMATION_DB_SCHEMA")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process (all its threads) has used; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After "pid (comm)", utime and stime are the 12th and 13th fields, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float | None:
    """CPU time every core of the machine has spent busy (user, nice, system, interrupts,
    steal) since boot, in seconds; None off Linux. Differences of it cover every process
    that took part, PostgreSQL and RabbitMQ included."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_ENV_DROPPED}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(server: Server, ready_path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(server.base_url + ready_path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"{server.name} did not become ready on port {server.port} "
        f"(exit code {server.process.poll()}):\n{_log_tail(server.log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def serving(
    name: str,
    command: Sequence[str],
    port: int,
    env: Mapping[str, str],
    log: Path,
    ready_path: str,
    cwd: Path | None = None,
    timeout_s: float = 30.0,
) -> Iterator[Server]:
    """Run ``command`` (which must listen on ``port``) until the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(name, port, process, log)
    try:
        _wait_ready(server, ready_path, timeout_s)
        yield server
    finally:
        _stop(process)


def automation_command(*args: str) -> list[str]:
    """The service's own command line, run by this interpreter."""
    return [sys.executable, "-m", "automation.cli", *args]


def create_account(env: dict[str, str]) -> str:
    """A token for a new account with plenty of credits, through the admin command."""
    done = subprocess.run(
        automation_command("admin", "create-account", "bench", "--credits", "100000000"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"create-account failed: {done.stdout}\n{done.stderr}")
    token: str = json.loads(done.stdout.strip().splitlines()[-1])["token"]
    return token


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    """The answer's JSON body; an answer with another status makes the run invalid."""
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, not {status}: {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body
