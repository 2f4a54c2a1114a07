"""configs: each site's automation config, with its timezone and last run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from projections.documents import dumps, loads
from projections.run_document import iso
from projections.runtime import Projection
from projections.sites import is_site_event


class ConfigsProjection(Projection):
    name: ClassVar[str] = "configs"
    tables: ClassVar[Sequence[str]] = ("site_configs",)
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS site_configs ("
        "site_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, timezone TEXT NOT NULL, "
        "config TEXT NOT NULL, last_run_at TEXT, is_enabled INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS site_configs_enabled ON site_configs (is_enabled)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        if not is_site_event(event):
            return
        name = type(event).__name__
        site_id = str(event.originator_id)
        if name == "SiteRegistered":
            tx.execute(
                "INSERT INTO site_configs (site_id, account_id, timezone, config, is_enabled) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    site_id,
                    str(event.account_id),
                    event.timezone,
                    dumps(event.config),
                    int(bool(event.config.get("is_enabled"))),
                ),
            )
        elif name == "ConfigUpdated":
            tx.execute(
                "UPDATE site_configs SET config = ?, timezone = ?, is_enabled = ? "
                "WHERE site_id = ?",
                (
                    dumps(event.config),
                    event.timezone,
                    int(bool(event.config.get("is_enabled"))),
                    site_id,
                ),
            )
        elif name == "RunAttached":
            tx.execute(
                "UPDATE site_configs SET last_run_at = ? WHERE site_id = ?",
                (iso(event.at), site_id),
            )


def config_document(tx: Tx, site_id: UUID) -> dict[str, Any] | None:
    """The stored config of a site: ``{"config", "timezone", "last_run_at"}``."""
    row = tx.fetchone(
        "SELECT config, timezone, last_run_at FROM site_configs WHERE site_id = ?",
        (str(site_id),),
    )
    if row is None:
        return None
    return {"config": loads(row[0]), "timezone": row[1], "last_run_at": row[2]}


def enabled_sites(tx: Tx) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(site_id, account_id, config, timezone, last_run_at) of every enabled site."""
    rows = tx.fetchall(
        "SELECT site_id, account_id, config, timezone, last_run_at FROM site_configs "
        "WHERE is_enabled = 1"
    )
    return [(r[0], r[1], loads(r[2]) | {"timezone": r[3]}, r[4]) for r in rows]
