"""The pipeline's content in SQL: importing keywords, listings, and the pending counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

from automation.adapters.content_schema import DDL, JSON_COLUMNS, LISTINGS
from automation.adapters.sql import Database, Tx
from automation.application.ports import ImportResult, KeywordInput
from automation.domain.estimate import PendingWork

_KEYWORD_NS = uuid5(NAMESPACE_URL, "automation:keyword")


def keyword_id(site_id: UUID, key: str) -> str:
    """Deterministic: the same keyword of the same site always has the same id."""
    return str(uuid5(_KEYWORD_NS, f"{site_id}:{key}"))


def stamp(at: datetime) -> str:
    """A fixed-width UTC timestamp, so that text order is time order."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_to_counts(tx: Tx, site_id: str, stage: int, pending: int = 0, done: int = 0) -> None:
    if not pending and not done:
        return
    tx.execute(
        "INSERT INTO pipeline_counts (site_id, stage, pending, done) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (site_id, stage) DO UPDATE SET "
        "pending = pipeline_counts.pending + excluded.pending, "
        "done = pipeline_counts.done + excluded.done",
        (site_id, stage, pending, done),
    )


def _decoded(name: str, value: Any) -> Any:
    return orjson.loads(value) if name in JSON_COLUMNS and isinstance(value, str) else value


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
        created = 0
        with self.db.write() as tx:
            # One microsecond apart: the stages then take keywords in the order they came.
            for offset, (key, item) in enumerate(unique.items()):
                created += tx.execute(
                    "INSERT INTO keywords "
                    "(id, site_id, keyword, keyword_key, volume, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, 'new', ?) ON CONFLICT DO NOTHING",
                    (
                        keyword_id(site_id, key),
                        str(site_id),
                        item.keyword,
                        key,
                        item.volume,
                        stamp(at + timedelta(microseconds=offset)),
                    ),
                )
            add_to_counts(tx, str(site_id), 1, pending=created)
        return ImportResult(created=created, duplicates=len(keywords) - created)

    def counts(self, site_id: UUID) -> dict[int, tuple[int, int]]:
        """(pending, done) per stage, 1 to 7."""
        with self.db.read() as tx:
            rows = tx.fetchall(
                "SELECT stage, pending, done FROM pipeline_counts WHERE site_id = ?",
                (str(site_id),),
            )
        found = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
        return {stage: found.get(stage, (0, 0)) for stage in range(1, 8)}

    def pending_work(self, site_id: UUID) -> PendingWork:
        pending = {stage: p for stage, (p, _) in self.counts(site_id).items()}
        return PendingWork(
            keywords=pending[1],
            clusters=pending[2],
            ideas=pending[3],
            tasks=pending[4],
            content=pending[5],
            image_prompts=pending[6],
        )

    def list_items(
        self, kind: str, site_id: UUID, status: str | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        table, columns = LISTINGS[kind]
        where, params = "site_id = ?", [str(site_id)]
        if status:
            where += " AND status = ?"
            params.append(status)
        with self.db.read() as tx:
            total = tx.fetchone(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)
            rows = tx.fetchall(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {where} "
                "ORDER BY created_at, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        results = [
            {name: _decoded(name, value) for name, value in zip(columns, row, strict=True)}
            for row in rows
        ]
        return (int(total[0]) if total else 0), results

    def content_item(self, site_id: UUID, content_id: str) -> dict[str, Any] | None:
        columns = (
            "id",
            "task_id",
            "title",
            "outline",
            "body",
            "word_count",
            "status",
            "created_at",
        )
        with self.db.read() as tx:
            row = tx.fetchone(
                f"SELECT {', '.join(columns)} FROM content WHERE id = ? AND site_id = ?",
                (content_id, str(site_id)),
            )
            if row is None:
                return None
            images = tx.fetchall(
                "SELECT id FROM images WHERE content_id = ? ORDER BY created_at, id",
                (content_id,),
            )
        item = {name: _decoded(name, value) for name, value in zip(columns, row, strict=True)}
        item["image_ids"] = [str(r[0]) for r in images]
        return item

    def image_file(self, site_id: UUID, image_id: str) -> tuple[str, bytes] | None:
        with self.db.read() as tx:
            row = tx.fetchone(
                "SELECT media_type, data FROM images WHERE id = ? AND site_id = ?",
                (image_id, str(site_id)),
            )
        return (str(row[0]), str(row[1]).encode()) if row else None
