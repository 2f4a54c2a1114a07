"""sites: each account's sites, and which account a site belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from automation.adapters.sql import Tx
from automation.domain.site import Site
from projections.bulk import Bulk, TableRows
from projections.documents import dumps, loads
from projections.run_document import iso
from projections.runtime import Projection


class SitesProjection(Projection):
    name: ClassVar[str] = "sites"
    tables: ClassVar[Sequence[str]] = ("sites",)
    ddl: ClassVar[Sequence[str]] = (
        "CREATE TABLE IF NOT EXISTS sites ("
        "site_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, seq BIGINT NOT NULL, "
        "body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sites_account ON sites (account_id, seq)",
    )

    def apply(self, tx: Tx, event: Any, position: int) -> None:
        kind = type(event)
        if kind is Site.SiteRegistered:
            tx.execute(
                "INSERT INTO sites (site_id, account_id, seq, body) VALUES (?, ?, ?, ?)",
                _registered(event, position),
            )
        elif kind is Site.ConfigUpdated:
            site_id = str(event.originator_id)
            row = tx.fetchone("SELECT body FROM sites WHERE site_id = ?", (site_id,))
            if row:
                tx.execute(
                    "UPDATE sites SET body = ? WHERE site_id = ?",
                    (_retimed(row[0], event), site_id),
                )

    def bulk(self) -> Bulk:
        return _SitesBulk()


COLUMNS = ("site_id", "account_id", "seq", "body")


def _registered(event: Any, position: int) -> tuple[str, str, int, str]:
    """The row a SiteRegistered inserts, in the order of COLUMNS."""
    site_id = str(event.originator_id)
    body = {
        "site_id": site_id,
        "name": event.name,
        "timezone": event.timezone,
        "created_at": iso(event.at),
    }
    return (site_id, str(event.account_id), position, dumps(body))


def _retimed(body: str, event: Any) -> str:
    """A site's body after a ConfigUpdated (which carries the timezone)."""
    return dumps(loads(body) | {"timezone": event.timezone})


class _SitesBulk(Bulk):
    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}  # site_id -> its row, in the order of COLUMNS

    def add(self, event: Any, position: int) -> None:
        kind = type(event)
        if kind is Site.SiteRegistered:
            row = _registered(event, position)
            self.rows[row[0]] = list(row)
        elif kind is Site.ConfigUpdated:
            found = self.rows.get(str(event.originator_id))
            if found:
                found[3] = _retimed(found[3], event)

    def finish(self) -> list[TableRows]:
        return [TableRows("sites", COLUMNS, [tuple(r) for r in self.rows.values()])]


def site_owner(tx: Tx, site_id: UUID) -> str | None:
    row = tx.fetchone("SELECT account_id FROM sites WHERE site_id = ?", (str(site_id),))
    return str(row[0]) if row else None


def sites_body(tx: Tx, account_id: UUID) -> str:
    rows = tx.fetchall(
        "SELECT body FROM sites WHERE account_id = ? ORDER BY seq", (str(account_id),)
    )
    return '{"results":[' + ",".join(str(r[0]) for r in rows) + "]}"


def site_document(tx: Tx, site_id: UUID) -> dict[str, Any] | None:
    row = tx.fetchone("SELECT body FROM sites WHERE site_id = ?", (str(site_id),))
    return dict(loads(row[0])) if row else None
