"""What the stages read and write: inputs, outputs and batch receipts, atomically."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from automation.adapters.content import add_to_counts, stamp
from automation.adapters.content_schema import STAGE_INPUTS
from automation.adapters.sql import Database, Tx
from automation.application.ports import BatchReceipt

REVIEW_STAGE = 7


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _in(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


class SqlPipelineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def pending_ids(self, site_id: UUID, stage: int, limit: int) -> list[str]:
        table, waiting, _ = STAGE_INPUTS[stage]
        with self.db.read() as tx:
            rows = tx.fetchall(
                f"SELECT id FROM {table} WHERE site_id = ? AND status = ? "
                "ORDER BY created_at, id LIMIT ?",
                (str(site_id), waiting, limit),
            )
        return [str(r[0]) for r in rows]

    def stage_inputs(self, stage: int, item_ids: list[str]) -> list[dict[str, Any]]:
        query, decode = _INPUT_QUERIES[stage]
        with self.db.read() as tx:
            rows = tx.fetchall(query.format(ids=_in(item_ids)), item_ids)
        by_id = {str(r[0]): decode(r) for r in rows}
        return [by_id[i] for i in item_ids if i in by_id]

    def titles(self, stage: int, item_ids: list[str]) -> list[dict[str, str]]:
        if not item_ids:
            return []
        return [{"id": i["id"], "title": i["title"]} for i in self.stage_inputs(stage, item_ids)]

    def receipt(self, run_id: UUID, stage: int, batch: int) -> BatchReceipt | None:
        with self.db.read() as tx:
            return _receipt(tx, run_id, stage, batch)

    def commit_batch(
        self,
        site_id: UUID,
        run_id: UUID,
        stage: int,
        batch: int,
        item_ids: list[str],
        outputs: list[dict[str, Any]],
        receipt: BatchReceipt,
        at: datetime,
    ) -> BatchReceipt:
        with self.db.write() as tx:
            claimed = tx.execute(
                "INSERT INTO batch_receipts "
                "(run_id, stage, batch, processed, created, credits, output_ids) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    str(run_id),
                    stage,
                    batch,
                    receipt.processed,
                    receipt.created,
                    receipt.credits,
                    _json(receipt.output_ids),
                ),
            )
            if not claimed:  # a twin delivery of this batch committed first: keep its work
                first = _receipt(tx, run_id, stage, batch)
                assert first is not None
                return first
            _WRITERS[stage](tx, str(site_id), outputs, stamp(at))
            table, waiting, done = STAGE_INPUTS[stage]
            moved = tx.execute(
                f"UPDATE {table} SET status = ? WHERE status = ? AND id IN ({_in(item_ids)})",
                [done, waiting, *item_ids],
            )
            changes = [(stage, -moved, moved)]
            if stage < 6:  # images (stage 6's outputs) wait nowhere; their articles do
                changes.append((stage + 1, len(outputs), 0))
            if stage == 5:  # each article that has its prompts now heads for the review gate
                changes.append((REVIEW_STAGE, moved, 0))
            _add_counts(tx, str(site_id), changes)
        return receipt

    def move_to_review(self, site_id: UUID, at: datetime) -> int:
        with self.db.write() as tx:
            moved = tx.execute(
                "UPDATE content SET status = 'review' WHERE site_id = ? AND status = 'prompted' "
                "AND NOT EXISTS (SELECT 1 FROM image_prompts p "
                "WHERE p.content_id = content.id AND p.status <> 'rendered')",
                (str(site_id),),
            )
            add_to_counts(tx, str(site_id), REVIEW_STAGE, pending=-moved, done=moved)
        return moved


def _add_counts(tx: Tx, site_id: str, changes: list[tuple[int, int, int]]) -> None:
    """``add_to_counts`` for several stages (each once) in one statement: (stage, pending,
    done) each."""
    rows = [(site_id, stage, pending, done) for stage, pending, done in changes if pending or done]
    if not rows:
        return
    tx.execute(
        "INSERT INTO pipeline_counts (site_id, stage, pending, done) VALUES "
        + ", ".join(["(?, ?, ?, ?)"] * len(rows))
        + " ON CONFLICT (site_id, stage) DO UPDATE SET "
        "pending = pipeline_counts.pending + excluded.pending, "
        "done = pipeline_counts.done + excluded.done",
        [value for row in rows for value in row],
    )


def _receipt(tx: Tx, run_id: UUID, stage: int, batch: int) -> BatchReceipt | None:
    row = tx.fetchone(
        "SELECT processed, created, credits, output_ids FROM batch_receipts "
        "WHERE run_id = ? AND stage = ? AND batch = ?",
        (str(run_id), stage, batch),
    )
    if row is None:
        return None
    return BatchReceipt(int(row[0]), int(row[1]), int(row[2]), list(orjson.loads(row[3])))


Decoder = Callable[[Any], dict[str, Any]]

_INPUT_QUERIES: dict[int, tuple[str, Decoder]] = {
    1: (
        "SELECT id, keyword FROM keywords WHERE id IN ({ids})",
        lambda r: {"id": str(r[0]), "title": r[1], "keyword": r[1]},
    ),
    2: (
        "SELECT id, name, keywords FROM clusters WHERE id IN ({ids})",
        lambda r: {"id": str(r[0]), "title": r[1], "name": r[1], "keywords": orjson.loads(r[2])},
    ),
    3: (
        "SELECT i.id, i.title, i.description, c.keywords FROM ideas i "
        "JOIN clusters c ON c.id = i.cluster_id WHERE i.id IN ({ids})",
        lambda r: {
            "id": str(r[0]),
            "title": r[1],
            "description": r[2],
            "keywords": orjson.loads(r[3]),
        },
    ),
    4: (
        "SELECT id, title, description, keywords FROM tasks WHERE id IN ({ids})",
        lambda r: {
            "id": str(r[0]),
            "title": r[1],
            "description": r[2],
            "keywords": orjson.loads(r[3]),
        },
    ),
    5: (
        "SELECT id, title, outline, body FROM content WHERE id IN ({ids})",
        lambda r: {"id": str(r[0]), "title": r[1], "outline": orjson.loads(r[2]), "body": r[3]},
    ),
    6: (
        "SELECT id, content_id, prompt FROM image_prompts WHERE id IN ({ids})",
        lambda r: {"id": str(r[0]), "title": r[2][:80], "content_id": str(r[1]), "prompt": r[2]},
    ),
}


def _write_clusters(tx: Tx, site_id: str, rows: list[dict[str, Any]], at: str) -> None:
    for row in rows:
        tx.execute(
            "INSERT INTO clusters (id, site_id, name, keyword_ids, keywords, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'new', ?) ON CONFLICT DO NOTHING",
            (
                row["id"],
                site_id,
                row["name"],
                _json(row["keyword_ids"]),
                _json(row["keywords"]),
                at,
            ),
        )
        ids = row["keyword_ids"]
        tx.execute(
            f"UPDATE keywords SET cluster_id = ? WHERE id IN ({_in(ids)})", [row["id"], *ids]
        )


def _write_ideas(tx: Tx, site_id: str, rows: list[dict[str, Any]], at: str) -> None:
    tx.executemany(
        "INSERT INTO ideas (id, site_id, cluster_id, title, description, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, 'new', ?) ON CONFLICT DO NOTHING",
        [(r["id"], site_id, r["cluster_id"], r["title"], r["description"], at) for r in rows],
    )


def _write_tasks(tx: Tx, site_id: str, rows: list[dict[str, Any]], at: str) -> None:
    tx.executemany(
        "INSERT INTO tasks (id, site_id, idea_id, title, description, keywords, status, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?) ON CONFLICT DO NOTHING",
        [
            (r["id"], site_id, r["idea_id"], r["title"], r["description"], _json(r["keywords"]), at)
            for r in rows
        ],
    )


def _write_content(tx: Tx, site_id: str, rows: list[dict[str, Any]], at: str) -> None:
    tx.executemany(
        "INSERT INTO content (id, site_id, task_id, title, outline, body, word_count, status, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'draft', ?) ON CONFLICT DO NOTHING",
        [
            (
                r["id"],
                site_id,
                r["task_id"],
                r["title"],
                _json(r["outline"]),
                r["body"],
                r["word_count"],
                at,
            )
            for r in rows
        ],
    )


def _write_prompts(tx: Tx, site_id: str, rows: list[dict[str, Any]], at: str) -> None:
    tx.executemany(
        "INSERT INTO image_prompts (id, site_id, content_id, prompt, status, created_at) "
        "VALUES (?, ?, ?, ?, 'new', ?) ON CONFLICT DO NOTHING",
        [(r["id"], site_id, r["content_id"], r["prompt"], at) for r in rows],
    )


def _write_images(tx: Tx, site_id: str, rows: list[dict[str, Any]], at: str) -> None:
    tx.executemany(
        "INSERT INTO images (id, site_id, content_id, image_prompt_id, media_type, data, "
        "status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'ready', ?) ON CONFLICT DO NOTHING",
        [
            (
                r["id"],
                site_id,
                r["content_id"],
                r["image_prompt_id"],
                r["media_type"],
                r["data"],
                at,
            )
            for r in rows
        ],
    )


_WRITERS: dict[int, Callable[[Tx, str, list[dict[str, Any]], str], None]] = {
    1: _write_clusters,
    2: _write_ideas,
    3: _write_tasks,
    4: _write_content,
    5: _write_prompts,
    6: _write_images,
}
