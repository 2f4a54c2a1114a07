"""The service's roles as separate OS processes, for tests that kill and restart them.

A ``Stack`` is one deployment under test: its own data directory, PostgreSQL schema, queue
prefix and events exchange, so scenarios never share data or messages. ``Role`` is one
``automation <role>`` process of it; the HTTP roles (``api``, ``serve``) are started when
their ``/healthz`` answers.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from tests.conftest import AMQP_URL, POSTGRES_URL, delete_from_rabbit, drop_schema, free_port

AUTOMATION = [sys.executable, "-m", "automation.cli"]
HTTP_ROLES = {"api", "serve"}


@dataclass
class Stack:
    """The environment of one deployment, exactly as an operator would pass it."""

    data_dir: Path
    production: bool  # PostgreSQL and RabbitMQ; else the embedded default
    log_dir: Path | None = None  # beside the data directory unless given
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def schema(self) -> str:
        return f"chaos_{self.tag}"

    @property
    def prefix(self) -> str:
        return f"chaos.{self.tag}."

    @property
    def exchange(self) -> str:
        return f"chaos.{self.tag}.events"

    @property
    def app_name(self) -> str:
        # libpq names every connection of the stack's processes after it (PGAPPNAME), so a
        # fault can drop this stack's connections and leave other test runs' alone.
        return f"chaos_{self.tag}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AUTOMATION_", "DATABASE_", "AMQP_", "PG"))
        }
        env |= {
            "AUTOMATION_DATA_DIR": str(self.data_dir),
            # A stalled batch must not be rescued by the watchdog: only recovery counts.
            "AUTOMATION_BATCH_WATCHDOG": "3600",
            "AUTOMATION_AI_PROVIDER": "local",
            "AUTOMATION_SHUTDOWN_GRACE": "10",
            # One batch of a stage in flight at a time: the run then lasts long enough (about
            # ten seconds) for a fault to land mid-stage, and its 1 s pauses between stages
            # hold (with more in flight, stages were seen to follow each other at once).
            "AUTOMATION_BATCHES_IN_FLIGHT": "1",
        }
        if self.production:
            env |= {
                "DATABASE_URL": POSTGRES_URL,
                "AUTOMATION_DB_SCHEMA": self.schema,
                "AUTOMATION_DB_POOL_SIZE": "2",  # seven processes share one server
                "AMQP_URL": AMQP_URL,
                "AUTOMATION_QUEUE_PREFIX": self.prefix,
                "AUTOMATION_EVENTS_EXCHANGE": self.exchange,
                "PGAPPNAME": self.app_name,
            }
        return env

    def remove(self) -> None:
        """Drop what the stack left in PostgreSQL and on the broker."""
        if self.production:
            drop_schema(POSTGRES_URL, self.schema)
            work = self.prefix + "stage_work"
            queues = [work, work + ".dead", self.prefix + "acceptance"]  # the test's own too
            delete_from_rabbit(queues, [self.exchange, self.prefix + "dead"])

    def run_version(self, run_id: str) -> int:
        """The run's last stored version, read from the store itself (the API may be down)."""
        if self.production:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                row = conn.execute(
                    f'SELECT max(originator_version) FROM "{self.schema}".automation_events '
                    "WHERE originator_id = %s",
                    (run_id,),
                ).fetchone()
        else:
            with closing(sqlite3.connect(self.data_dir / "events.db", timeout=30)) as conn:
                row = conn.execute(
                    "SELECT max(originator_version) FROM stored_events WHERE originator_id = ?",
                    (uuid.UUID(run_id).hex,),
                ).fetchone()
        return int(row[0] or 0) if row else 0

    def admin(self, *args: str) -> str:
        done = subprocess.run(
            [*AUTOMATION, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"automation {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout


class Role:
    """One ``automation <name>`` process, restartable, with its output in a log file."""

    def __init__(self, stack: Stack, name: str, label: str | None = None) -> None:
        self.stack, self.name, self.label = stack, name, label or name
        self.port = free_port() if name in HTTP_ROLES else 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (stack.log_dir or stack.data_dir.parent) / f"{self.label}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [*AUTOMATION, self.name]
        if self.port:
            args += ["--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args, env=self.stack.env(), stdout=out, stderr=subprocess.STDOUT
            )
        if self.port:
            self._await_health()

    def _await_health(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 180  # generous: CI machines may be busy
        while True:
            assert self.process.poll() is None, self.tail()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{self.label} did not come up"
            time.sleep(0.1)

    def signal(self, number: signal.Signals, wait: float = 60) -> None:
        """Send ``number`` and wait for the process to end (SIGTERM: after its grace)."""
        assert self.process is not None
        assert self.process.poll() is None, self.tail()
        self.process.send_signal(number)
        self.process.wait(wait)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class Roles:
    """Every role of a deployment: the production roles, or ``serve`` alone."""

    def __init__(self, stack: Stack, workers: int = 1) -> None:
        names = (
            ["api", "projector", "orchestrator", "relay", "scheduler"]
            if stack.production
            else ["serve"]
        )
        self.by_label = {n: Role(stack, n) for n in names}
        if stack.production:
            for i in range(workers):
                self.by_label[f"worker{i}"] = Role(stack, "worker", f"worker{i}")
        self.http = self.by_label["api" if stack.production else "serve"]

    def __getitem__(self, label: str) -> Role:
        return self.by_label[label]

    def start(self) -> None:
        try:
            for role in self.by_label.values():
                if role is not self.http:
                    role.start()
            self.http.start()
        except BaseException:
            self.stop()  # none of them may outlive a start that failed
            raise

    def kill_and_restart(self, label: str, ended: Callable[[], None]) -> None:
        """SIGKILL the role and start it again; ``ended`` is called as the restart begins."""
        self[label].signal(signal.SIGKILL)
        ended()
        self[label].start()

    def stop(self) -> None:
        # All at once: each may take its shutdown grace, and they need not take turns.
        for role in self.by_label.values():
            if role.alive():
                assert role.process is not None
                role.process.terminate()
        for role in self.by_label.values():
            role.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {r.label}\n{r.tail()}" for r in self.by_label.values())
