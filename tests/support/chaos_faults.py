"""Faults of the backing services: RabbitMQ stopped and started, PostgreSQL dropping every
connection, and a small filesystem of the test's own that can be filled."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.conftest import POSTGRES_URL

RABBITMQCTL_DIRS = "/usr/sbin:/usr/lib/rabbitmq/bin:/usr/local/sbin"


def rabbitmqctl(*args: str) -> None:
    path = os.environ.get("PATH", "") + ":" + RABBITMQCTL_DIRS
    found = shutil.which("rabbitmqctl", path=path)
    if found is None:
        message = "!!! rabbitmqctl is not installed; the broker restart cannot be rehearsed"
        if os.environ.get("CI"):
            pytest.fail(message + " — and CI must run it")
        pytest.skip(message)
    subprocess.run([found, *args], check=True, capture_output=True, timeout=120)


@contextmanager
def rabbitmq_stopped(restarting: Callable[[], None]) -> Iterator[None]:
    """RabbitMQ's application stopped (every client loses its connection, as at a restart)
    and started again afterwards, also when the test fails meanwhile; ``restarting`` is
    called as the start begins (``start_app`` returns once the broker is up)."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        restarting()
        rabbitmqctl("start_app")


def terminate_connections(app_name: str) -> int:
    """What a PostgreSQL restart does to clients: every connection of the processes named
    ``app_name`` (their PGAPPNAME) is terminated. Other test runs sharing the database keep
    theirs."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = %s",
            (app_name,),
        ).fetchall()
    return len(rows)


@contextmanager
def small_disk(where: Path, size: str = "64m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``: a disk the test may fill (root ignores file
    modes, so a filesystem of its own is how to refuse root's writes). Needs the right to
    mount; without it the test is skipped, saying so."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"!!! cannot mount a small filesystem ({mounted.stderr.strip()})")
    try:
        yield where
    finally:
        # Lazily: a process that still holds a file open must not keep the mount alive.
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Write zeros to a file on ``disk`` until it is full; the file, to free the space."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):  # then what is left, in smaller and smaller writes
            try:
                while True:
                    out.write(bytes(size))
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    return filler
