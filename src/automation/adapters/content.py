"""The pipeline's content in SQL tables: keywords and what the stages make of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from automation.adapters.sql import Database
from automation.application.ports import ImportResult, KeywordInput
from automation.domain.estimate import PendingWork

_KEYWORD_NS = uuid5(NAMESPACE_URL, "automation:keyword")

DDL = (
    "CREATE TABLE IF NOT EXISTS keywords ("
    "id TEXT PRIMARY KEY, site_id TEXT NOT NULL, keyword TEXT NOT NULL, "
    "keyword_key TEXT NOT NULL, volume BIGINT, status TEXT NOT NULL, cluster_id TEXT, "
    "created_at TEXT NOT NULL, UNIQUE (site_id, keyword_key))",
    "CREATE INDEX IF NOT EXISTS keywords_site_status ON keywords (site_id, status, created_at)",
)

LISTINGS: dict[str, tuple[str, str]] = {
    # kind: (table, the columns a listing shows)
    "keywords": ("keywords", "id, keyword, volume, status, cluster_id, created_at"),
}


def keyword_id(site_id: UUID, key: str) -> str:
    """Deterministic: the same keyword of the same site always has the same id."""
    return str(uuid5(_KEYWORD_NS, f"{site_id}:{key}"))


class SqlContentStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.write() as tx:
            for statement in DDL:
                tx.execute(statement)

    def add_keywords(
        self, site_id: UUID, keywords: Sequence[KeywordInput], at: datetime
    ) -> ImportResult:
        unique: dict[str, KeywordInput] = {}
        for item in keywords:
            unique.setdefault(item.keyword.casefold(), item)
        rows = [
            (
                keyword_id(site_id, key),
                str(site_id),
                item.keyword,
                key,
                item.volume,
                "new",
                at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            )
            for key, item in unique.items()
        ]
        created = 0
        with self.db.write() as tx:
            for row in rows:
                created += tx.execute(
                    "INSERT INTO keywords "
                    "(id, site_id, keyword, keyword_key, volume, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    row,
                )
        return ImportResult(created=created, duplicates=len(keywords) - created)

    def pending_work(self, site_id: UUID) -> PendingWork:
        with self.db.read() as tx:
            row = tx.fetchone(
                "SELECT COUNT(*) FROM keywords WHERE site_id = ? AND status = 'new'",
                (str(site_id),),
            )
        return PendingWork(keywords=int(row[0]) if row else 0)

    def list_items(
        self, kind: str, site_id: UUID, status: str | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        table, columns = LISTINGS[kind]
        where, params = "site_id = ?", [str(site_id)]
        if status:
            where += " AND status = ?"
            params.append(status)
        names = [c.strip() for c in columns.split(",")]
        with self.db.read() as tx:
            total = tx.fetchone(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)
            rows = tx.fetchall(
                f"SELECT {columns} FROM {table} WHERE {where} "
                "ORDER BY created_at, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        return (int(total[0]) if total else 0), [dict(zip(names, r, strict=True)) for r in rows]
