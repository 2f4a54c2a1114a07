"""Settings: the only place that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelPrice(BaseModel):
    """Credits per 1,000 tokens of a model."""

    model_config = ConfigDict(extra="forbid")
    input: int = Field(ge=0)
    output: int = Field(ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    automation_data_dir: Path = Field(default=Path("./var"))
    database_url: str | None = None
    amqp_url: str | None = None
    # Keeps one deployment's tables apart in a shared PostgreSQL database (tests use it).
    database_schema: str | None = Field(default=None, alias="AUTOMATION_DB_SCHEMA")
    db_pool_size: int = Field(default=10, alias="AUTOMATION_DB_POOL_SIZE")
    # How long a command's answer waits for the read models to show it.
    read_your_writes_timeout: float = Field(default=5.0, alias="AUTOMATION_RYW_TIMEOUT")
    # Request bodies larger than this are refused unread (400): a route holds its whole body.
    max_body_bytes: int = Field(default=16 << 20, ge=1024, alias="AUTOMATION_MAX_BODY_BYTES")

    # The scheduler starts a missed slot's run only this long after the slot (seconds).
    catch_up_window: float = Field(default=6 * 3600, alias="AUTOMATION_CATCH_UP_WINDOW")
    scheduler_interval: float = Field(default=15.0, alias="AUTOMATION_SCHEDULER_INTERVAL")

    events_exchange: str = Field(default="automation.events", alias="AUTOMATION_EVENTS_EXCHANGE")
    queue_prefix: str = Field(default="automation.", alias="AUTOMATION_QUEUE_PREFIX")
    # Attempts a work message gets before it is parked in its dead-letter queue.
    max_deliveries: int = Field(default=5, alias="AUTOMATION_MAX_DELIVERIES")
    # Waits between a work message's attempts: the first, doubling up to the most. A failure
    # because the store or the broker is away is tried again without counting toward
    # max_deliveries (see adapters/transient.py).
    retry_backoff: float = Field(default=0.1, gt=0, alias="AUTOMATION_RETRY_BACKOFF")
    retry_backoff_max: float = Field(default=2.0, gt=0, alias="AUTOMATION_RETRY_BACKOFF_MAX")
    # How long a stopping worker lets in-flight batches finish before handing them back.
    shutdown_grace: float = Field(default=30.0, alias="AUTOMATION_SHUTDOWN_GRACE")

    # The AI provider: "local" (offline, the default), "free" (local at zero cost, for
    # benchmarks) or "openai" (any OpenAI-compatible HTTP API).
    ai_provider: str = Field(default="local", alias="AUTOMATION_AI_PROVIDER")
    openai_base_url: str = Field(default="https://api.openai.com/v1", alias="OPENAI_BASE_URL")
    openai_api_key: str = Field(default="", alias="OPENAI_API_KEY")
    openai_model: str = Field(default="gpt-4o-mini", alias="OPENAI_MODEL")
    # Credits per 1,000 tokens, input and output, per model (JSON), and for any other model.
    openai_prices: dict[str, ModelPrice] = Field(
        default_factory=dict, alias="AUTOMATION_OPENAI_PRICES"
    )
    openai_default_price: ModelPrice = Field(
        default_factory=lambda: ModelPrice(input=1, output=1),
        alias="AUTOMATION_OPENAI_DEFAULT_PRICE",
    )
    ai_attempts: int = Field(default=4, alias="AUTOMATION_AI_ATTEMPTS")
    ai_backoff: float = Field(default=0.5, alias="AUTOMATION_AI_BACKOFF")
    worker_prefetch: int = Field(default=8, alias="AUTOMATION_WORKER_PREFETCH")
    # How many batches of one run's stage may be with workers at once (stages without a
    # within_stage_delay only; a delay between batches means one at a time).
    batches_in_flight: int = Field(default=8, ge=1, le=64, alias="AUTOMATION_BATCHES_IN_FLIGHT")
    # A dispatched batch whose result has not come back after this long is sent again.
    batch_watchdog: float = Field(default=300.0, alias="AUTOMATION_BATCH_WATCHDOG")

    # Log lines: "text" for people, "json" (one object a line) for collectors; the level.
    log_format: Literal["text", "json"] = Field(default="text", alias="AUTOMATION_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="AUTOMATION_LOG_LEVEL"
    )

    # Where a role without an HTTP API (projector, scheduler, relay, orchestrator, worker)
    # serves /metrics, /healthz and /readyz; unset: it serves none.
    metrics_port: int | None = Field(default=None, ge=0, le=65535, alias="AUTOMATION_METRICS_PORT")
    metrics_host: str = Field(default="127.0.0.1", alias="AUTOMATION_METRICS_HOST")

    # Traces (tracing.py): off unless an exporter is named. The SDK itself reads the other
    # standard variables (endpoints, sampler, resource attributes).
    otel_traces_exporter: str = Field(default="none", alias="OTEL_TRACES_EXPORTER")
    otel_sdk_disabled: bool = Field(default=False, alias="OTEL_SDK_DISABLED")
    otel_service_name: str = Field(default="automation", alias="OTEL_SERVICE_NAME")

    aggregate_cache_size: int = Field(default=10_000, alias="AUTOMATION_AGGREGATE_CACHE")
    # /readyz answers 503 while a read model is further behind the log than this.
    ready_max_lag: int = Field(default=10_000, alias="AUTOMATION_READY_MAX_LAG")

    @field_validator("otel_traces_exporter")
    @classmethod
    def _known_exporters(cls, value: str) -> str:
        names = {n.strip() for n in value.lower().split(",") if n.strip()}
        if names - {"otlp", "console", "none"}:
            raise ValueError("OTEL_TRACES_EXPORTER takes otlp, console or none")
        return value.lower()

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name == "log_format" else value.upper()

    def store_description(self) -> str:
        """Where this process's data lives, with any password masked (for log lines)."""
        if not self.database_url:
            return f"SQLite in {self.automation_data_dir.resolve()}"
        schema = f", schema {self.database_schema}" if self.database_schema else ""
        return f"PostgreSQL at {_masked(self.database_url)}{schema}"

    def bus_description(self) -> str:
        return f"RabbitMQ at {_masked(self.amqp_url)}" if self.amqp_url else "the in-process bus"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url)

    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing library's settings for the event store."""
        # Aggregates stay cached between commands; each read still fetches the events
        # saved since (fast-forward), so other processes' writes are never missed.
        cache = {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }
        return cache | self._store_env()

    def _store_env(self) -> dict[str, str]:
        if not self.database_url:
            self.automation_data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.automation_data_dir / "events.db"),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        url = urlparse(self.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            # The library insists on a password even where the server trusts local users.
            "POSTGRES_PASSWORD": unquote(url.password or "unused"),
            "POSTGRES_POOL_SIZE": str(self.db_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.db_pool_size),
            # Concurrent saves share a transaction: see adapters/group_commit.py.
            "APPLICATION_RECORDER_TOPIC": "automation.adapters.group_commit:GroupCommitRecorder",
        }
        if self.database_schema:
            env["POSTGRES_SCHEMA"] = self.database_schema
        return env


def _masked(url: str) -> str:
    parts = urlparse(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
