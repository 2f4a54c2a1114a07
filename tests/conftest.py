"""Fixtures shared by every test: backends, wired services, and a real HTTP server.

Tests that touch persistence take the ``backend`` fixture and run once on the embedded
default (SQLite files) and once on PostgreSQL, each PostgreSQL test in a schema of its own.
Where PostgreSQL cannot be reached the PostgreSQL half is skipped with a loud reason, except
under CI (``CI`` set), where it fails instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aio_pika
import aio_pika.exceptions
import httpx
import psycopg
import pytest
import uvicorn
from hypothesis import settings as settings_profiles

from automation.api.app import create_app
from automation.bootstrap import Services, build
from automation.config import Settings
from consumers.orchestrator import WORK_QUEUE
from consumers.runtime import BackgroundRoles

# Under CI, property tests draw the same examples every run and keep no example database, so
# a result never depends on what an earlier run on the same machine happened to find.
settings_profiles.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings_profiles.load_profile("ci")

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); its tests cannot run"
    if os.environ.get("CI"):
        pytest.fail(message + " — and CI must run them")
    pytest.skip("!!! " + message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        _unavailable("PostgreSQL", error)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    async def ping() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()

    try:
        # A thread of its own: this fixture may be first asked for inside a running loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, ping()).result()
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as error:
        _unavailable("RabbitMQ", error)
    return AMQP_URL


@pytest.fixture(params=["in-process", "rabbitmq"])
def bus_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rabbit_names() -> Iterator[dict[str, str]]:
    """An exchange and a queue prefix of this test's own, so tests never share messages.
    Whatever the service (or the test's own consumer) declared under them is deleted
    afterwards, so runs leave nothing on the broker."""
    tag = uuid.uuid4().hex[:10]
    exchange, prefix = f"test.{tag}.events", f"test.{tag}."
    yield {"AUTOMATION_EVENTS_EXCHANGE": exchange, "AUTOMATION_QUEUE_PREFIX": prefix}
    queues = [prefix + WORK_QUEUE, prefix + WORK_QUEUE + ".dead", prefix + "acceptance"]
    delete_from_rabbit(queues, [exchange, prefix + "dead"])


def delete_from_rabbit(queues: list[str], exchanges: list[str]) -> None:
    """Delete these queues and exchanges where they exist; quietly nothing without a broker."""

    async def delete() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            for name in [*queues, *exchanges]:
                channel = await connection.channel()  # a missing name closes its channel
                try:
                    if name in queues:
                        await channel.queue_delete(name)
                    else:
                        await channel.exchange_delete(name)
                except aio_pika.exceptions.AMQPError:
                    continue
                await channel.close()

    try:
        with ThreadPoolExecutor(1) as pool:  # maybe inside a running loop: a thread of its own
            pool.submit(asyncio.run, delete()).result()
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError):
        pass  # no broker: the test that needed one was skipped, or failed saying why


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    if backend == "sqlite":
        yield Settings(automation_data_dir=tmp_path / "var")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield Settings(
        automation_data_dir=tmp_path / "var",
        database_url=url,
        AUTOMATION_DB_SCHEMA=schema,
        AUTOMATION_DB_POOL_SIZE=4,
    )
    drop_schema(url, schema)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    wired = build(settings)
    yield wired
    wired.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    """The service's app on a real port, in a thread of the test process: the API role
    alone (runs stay where they are), or with the pipeline roles (runs move)."""

    def __init__(self, services: Services, pipeline: bool = False, projector: bool = True) -> None:
        self.services = services
        self.projects = projector  # False: the read models are another process's job
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        roles = BackgroundRoles(services, orchestrator=pipeline, workers=pipeline)
        app = create_app(services, on_startup=[roles.start], on_shutdown=[roles.stop])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            loop="asyncio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.services.start_following()
        if self.projects:
            self.services.projector.start(poll_interval=0.2)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=40)
        self.services.projector.stop()


class Api:
    """An HTTP client of the service, acting for one account."""

    def __init__(self, url: str, token: str | None, account_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30)
        self.account_id = account_id

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self.http.post(path, json=json, params=params)

    def put(self, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self.http.put(path, json=json, params=params)

    def site(self, name: str = "Trail shoes", timezone: str = "UTC") -> str:
        answer = self.post("/api/v1/sites", {"name": name, "timezone": timezone})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["site_id"])

    def keywords(self, site_id: str, keywords: list[Any]) -> httpx.Response:
        return self.post("/api/v1/planner/keywords", {"keywords": keywords}, site_id=site_id)

    def run_now(self, site_id: str) -> httpx.Response:
        return self.post("/api/v1/automation/run_now", site_id=site_id)


@pytest.fixture
def server(services: Services) -> Iterator[RunningServer]:
    with RunningServer(services) as running:
        yield running


@pytest.fixture
def new_account(server: RunningServer) -> Any:
    """Open an account (with credits) and return an Api client acting for it."""

    def open_account(credits: int = 1_000_000, name: str = "Acme") -> Api:
        account_id, token = server.services.app.open_account(name, credits)
        return Api(server.url, token, str(account_id))

    return open_account


@pytest.fixture
def api(new_account: Any) -> Api:
    client: Api = new_account()
    return client


def error_code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process (a role, an admin command) use
    exactly these settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOMATION_", "DATABASE_", "AMQP_"))
    }
    env["AUTOMATION_DATA_DIR"] = str(settings.automation_data_dir)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["AUTOMATION_DB_SCHEMA"] = settings.database_schema
    if settings.amqp_url:
        env["AMQP_URL"] = settings.amqp_url
    env["AUTOMATION_EVENTS_EXCHANGE"] = settings.events_exchange
    env["AUTOMATION_QUEUE_PREFIX"] = settings.queue_prefix
    return env


@pytest.fixture
def rabbit_settings(settings: Settings, amqp_url: str, rabbit_names: dict[str, str]) -> Settings:
    """The backend's settings, with RabbitMQ as the bus (names of this test's own)."""
    return settings.model_copy(
        update={
            "amqp_url": amqp_url,
            "events_exchange": rabbit_names["AUTOMATION_EVENTS_EXCHANGE"],
            "queue_prefix": rabbit_names["AUTOMATION_QUEUE_PREFIX"],
        }
    )
