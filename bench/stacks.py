"""The service's stacks as the benchmarks set them up: settings of a fresh embedded or
production stack, the environment of a service process on it, and cleaning up after it.

A production stack is PostgreSQL in a schema of its own and RabbitMQ with a queue prefix
and events exchange of its own (``bench_<hex>``, ``bench.<hex>.``), all dropped when the
block ends, so benchmarks never touch a deployment's or a test's tables and queues.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import aio_pika
import psycopg

from automation.config import Settings as ServiceSettings
from bench.servers import clean_env
from consumers.orchestrator import WORK_QUEUE

POSTGRES_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


@contextmanager
def stack(backend: str, workdir: Path) -> Iterator[ServiceSettings]:
    """Settings of a fresh stack (``embedded`` or ``production``), with the zero-cost AI
    provider; a production stack's schema, queues and exchanges are dropped at the end."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"{backend}-", dir=workdir))
    common: dict[str, Any] = {"automation_data_dir": data_dir, "AUTOMATION_AI_PROVIDER": "free"}
    if backend == "embedded":
        yield ServiceSettings(**common, database_url=None, amqp_url=None, AUTOMATION_DB_SCHEMA=None)
        return
    tag = uuid.uuid4().hex[:10]
    settings = ServiceSettings(
        **common,
        database_url=POSTGRES_URL,
        AUTOMATION_DB_SCHEMA=f"bench_{tag}",
        amqp_url=AMQP_URL,
        AUTOMATION_QUEUE_PREFIX=f"bench.{tag}.",
        AUTOMATION_EVENTS_EXCHANGE=f"bench.{tag}.events",
    )
    try:
        yield settings
    finally:
        drop_schema(POSTGRES_URL, f"bench_{tag}")
        prefix = settings.queue_prefix
        delete_rabbit(
            queues=[prefix + WORK_QUEUE, prefix + WORK_QUEUE + ".dead"],
            exchanges=[prefix + "dead", settings.events_exchange],
        )


def service_env(settings: ServiceSettings) -> dict[str, str]:
    """The environment of an ``automation`` process (serve, worker...) on a production
    stack made by ``stack``."""
    assert settings.database_url
    assert settings.amqp_url
    assert settings.database_schema
    return clean_env(
        {
            "AUTOMATION_DATA_DIR": str(settings.automation_data_dir),
            "DATABASE_URL": settings.database_url,
            "AMQP_URL": settings.amqp_url,
            "AUTOMATION_DB_SCHEMA": settings.database_schema,
            "AUTOMATION_QUEUE_PREFIX": settings.queue_prefix,
            "AUTOMATION_EVENTS_EXCHANGE": settings.events_exchange,
            "AUTOMATION_AI_PROVIDER": settings.ai_provider,
        }
    )


def drop_schema(url: str, schema: str) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except psycopg.Error as error:
        _log(f"could not drop schema {schema}: {error}")


def delete_rabbit(queues: list[str], exchanges: list[str]) -> None:
    async def delete() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=10)
        async with connection:
            for kind, names in (("queue", queues), ("exchange", exchanges)):
                for name in names:
                    channel = await connection.channel()
                    try:
                        if kind == "queue":
                            await channel.queue_delete(name)
                        else:
                            await channel.exchange_delete(name)
                    except Exception as error:  # noqa: BLE001 - cleanup reports, never fails
                        _log(f"could not delete {kind} {name}: {error}")
                    finally:
                        with suppress(Exception):
                            await channel.close()

    try:
        asyncio.run(asyncio.wait_for(delete(), timeout=30))
    except Exception as error:  # noqa: BLE001 - cleanup reports, never fails
        _log(f"RabbitMQ cleanup failed: {error}")


def unreachable() -> list[str]:
    """Why the production stack cannot be measured: PostgreSQL or RabbitMQ down."""
    problems = []
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        problems.append(f"PostgreSQL at {POSTGRES_URL} is not reachable: {error}")

    async def ping() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(ping())
    except Exception as error:  # noqa: BLE001 - any failure means no RabbitMQ to measure on
        problems.append(f"RabbitMQ at {AMQP_URL} is not reachable: {error!r}")
    return problems
