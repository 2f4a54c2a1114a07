"""The composition root: builds every part from Settings, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from eventsourcing.postgres import PostgresApplicationRecorder

from automation.adapters.ai_instrumented import InstrumentedAI
from automation.adapters.content import SqlContentStore
from automation.adapters.estimate_metrics import observe_estimates
from automation.adapters.event_log import ApplicationEventSource
from automation.adapters.inprocess_bus import InProcessWorkBus
from automation.adapters.leadership import FileLeadership, PostgresLeadership
from automation.adapters.pg_listen import PgWakeups, tracking_channel
from automation.adapters.pipeline_store import SqlPipelineStore
from automation.adapters.rabbitmq import RabbitEventPublisher, RabbitMQ, RabbitWorkBus
from automation.adapters.run_metrics import observe_saved
from automation.adapters.sql import Database, PostgresDatabase, SqliteDatabase, schema_lock
from automation.adapters.transient import Backoff
from automation.application.app import AutomationApp
from automation.application.estimating import Estimator
from automation.application.ports import Clock, Leadership, WorkBus
from automation.config import Settings
from automation.pipeline_wiring import stage_runner
from automation.scheduler import Scheduler
from consumers.orchestrator import Orchestrator
from consumers.relay import Relay
from consumers.stage_worker import StageWorker
from projections.configs import ConfigsProjection
from projections.current_run import CurrentRunProjection
from projections.history import HistoryProjection
from projections.logs import LogsProjection
from projections.runtime import Projection, Projector
from projections.sites import SitesProjection
from projections.slots import SlotsProjection


def all_projections() -> list[Projection]:
    return [
        SitesProjection(),
        ConfigsProjection(),
        CurrentRunProjection(),
        HistoryProjection(),
        LogsProjection(),
        SlotsProjection(),
    ]


@dataclass
class Services:
    settings: Settings
    app: AutomationApp
    views: Database
    content_db: Database
    content: SqlContentStore
    projector: Projector
    scheduler: Scheduler
    work_bus: WorkBus
    rabbit: RabbitMQ | None
    relay: Relay | None
    wakeups: PgWakeups | None
    pipeline: SqlPipelineStore
    orchestrator: Orchestrator
    worker: StageWorker

    def start_following(self) -> None:
        """Wake followers of the log (projector, relay) as soon as anything is saved."""
        self.app.listeners.append(lambda _position: self._wake())
        if self.wakeups is not None:
            self.wakeups.listeners.append(self._wake)
            self.wakeups.start()

    def _wake(self) -> None:
        self.projector.wake()
        self.orchestrator.wake_threadsafe()
        if self.relay is not None:
            self.relay.wake_threadsafe()

    def close(self) -> None:
        self.scheduler.stop()
        self.projector.stop()
        self.worker.close()
        self.orchestrator.close()
        if self.relay is not None:
            self.relay.close()
        if self.wakeups is not None:
            self.wakeups.stop()
        self.app.close()
        self.views.close()
        if self.content_db is not self.views:
            self.content_db.close()


def open_database(settings: Settings, name: str) -> Database:
    if settings.database_url:
        return PostgresDatabase(
            settings.database_url, settings.database_schema, settings.db_pool_size
        )
    return SqliteDatabase(settings.automation_data_dir / f"{name}.db")


def _leadership(settings: Settings, role: str) -> Leadership:
    """Which copy of ``role`` works: across every process on the same store."""
    if settings.database_url:
        return PostgresLeadership(settings.database_url, settings.database_schema, role)
    return FileLeadership(settings.automation_data_dir / f"{role}.lock", role)


def build(settings: Settings | None = None, clock: Clock | None = None) -> Services:
    settings = settings or Settings()
    with schema_lock(settings.database_url):
        return _build(settings, clock)


def _build(settings: Settings, clock: Clock | None) -> Services:
    views = open_database(settings, "views")
    content_db = views if settings.database_url else open_database(settings, "content")
    app = AutomationApp(env=settings.event_store_env(), clock=clock)
    app.saved_listeners.append(observe_saved)
    source = ApplicationEventSource(app)
    progress = tracking_channel(settings.database_schema) if settings.database_url else None
    projector = Projector(views, source, all_projections(), progress_channel=progress)
    projector.setup()
    content = SqlContentStore(content_db)
    pipeline = SqlPipelineStore(content_db)
    scheduler = Scheduler(
        app, views, content.pending_work, timedelta(seconds=settings.catch_up_window)
    )
    rabbit = RabbitMQ(settings.amqp_url) if settings.amqp_url else None
    backoff = Backoff(settings.retry_backoff, settings.retry_backoff_max)
    work_bus: WorkBus
    relay = None
    if rabbit is not None:
        work_bus = RabbitWorkBus(rabbit, settings.queue_prefix, settings.max_deliveries, backoff)
        publisher = RabbitEventPublisher(rabbit, settings.events_exchange)
        relay = Relay(source, views, publisher, app.owner_of, _leadership(settings, "relay"))
    else:
        work_bus = InProcessWorkBus(settings.max_deliveries, backoff)
    wakeups = None
    if settings.database_url and isinstance(app.recorder, PostgresApplicationRecorder):
        # The channel the recorder NOTIFYs on with every save (named after its table).
        wakeups = PgWakeups(settings.database_url, app.recorder.channel_name, progress)
    orchestrator = Orchestrator(
        app,
        views,
        source,
        pipeline,
        work_bus,
        watchdog=settings.batch_watchdog,
        window=settings.batches_in_flight,
    )
    worker = StageWorker(app, stage_runner(settings, pipeline))
    ai = worker.runner.ai  # the estimate's dry runs are not calls a run pays for
    app.estimator = Estimator(pipeline, ai.inner if isinstance(ai, InstrumentedAI) else ai)
    app.saved_listeners.append(observe_estimates)
    return Services(
        settings=settings,
        app=app,
        views=views,
        content_db=content_db,
        content=content,
        projector=projector,
        scheduler=scheduler,
        work_bus=work_bus,
        rabbit=rabbit,
        relay=relay,
        wakeups=wakeups,
        pipeline=pipeline,
        orchestrator=orchestrator,
        worker=worker,
    )
