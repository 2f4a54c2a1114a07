"""The composition root: builds every part from Settings, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from automation.adapters.content import SqlContentStore
from automation.adapters.event_log import ApplicationEventSource
from automation.adapters.sql import Database, PostgresDatabase, SqliteDatabase
from automation.application.app import AutomationApp
from automation.application.ports import Clock
from automation.config import Settings
from automation.scheduler import Scheduler
from projections.configs import ConfigsProjection
from projections.current_run import CurrentRunProjection
from projections.history import HistoryProjection
from projections.logs import LogsProjection
from projections.runtime import Projection, Projector
from projections.sites import SitesProjection


def all_projections() -> list[Projection]:
    return [
        SitesProjection(),
        ConfigsProjection(),
        CurrentRunProjection(),
        HistoryProjection(),
        LogsProjection(),
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

    def close(self) -> None:
        self.scheduler.stop()
        self.projector.stop()
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


def build(settings: Settings | None = None, clock: Clock | None = None) -> Services:
    settings = settings or Settings()
    views = open_database(settings, "views")
    content_db = views if settings.database_url else open_database(settings, "content")
    app = AutomationApp(env=settings.event_store_env(), clock=clock)
    projector = Projector(views, ApplicationEventSource(app), all_projections())
    projector.setup()
    app.listeners.append(lambda _position: projector.wake())
    content = SqlContentStore(content_db)
    scheduler = Scheduler(
        app, views, content.pending_work, timedelta(seconds=settings.catch_up_window)
    )
    return Services(
        settings=settings,
        app=app,
        views=views,
        content_db=content_db,
        content=content,
        projector=projector,
        scheduler=scheduler,
    )
