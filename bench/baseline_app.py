"""The baselines the service's read endpoints are compared with, as one small FastAPI app.

* ``GET /bare``: an ``async def`` returning a small constant dict: the floor that uvicorn,
  Starlette and FastAPI cost per request on this machine.
* ``GET /naive?site_id=``: the textbook way: a sync ``def`` (so FastAPI runs it in its
  threadpool) that opens a sqlite3 connection, SELECTs one JSON row (a run document of the
  same shape as ``current_run``'s), parses it and returns it through a pydantic response
  model.
* ``GET /naive_pg?site_id=`` (only with ``--postgres DSN``): the textbook read on
  PostgreSQL: a sync ``def`` (FastAPI's threadpool) takes a pooled psycopg connection (a
  pool of 10, the service's default size), SELECTs the run document's JSON row by its
  primary key, parses it and returns it through the same pydantic response model.
* ``POST /naive_command`` (only with ``--postgres DSN``): the textbook durable command, the
  least a command whose next read must see it can do. A sync ``def`` takes a pooled psycopg
  connection and, in one transaction, INSERTs an event row and UPSERTs the run's row of a
  read model, then commits: one commit, where an event-sourced command with its projection
  has at least two (the events, then the view), plus reading its aggregate.

Run it as ``python -m bench.baseline_app --port P --db PATH [--postgres DSN --schema S]``;
it is served exactly as
``automation serve`` serves the service (``uvicorn.run``, one worker, uvloop, httptools,
no access log, log level warning).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

DB_ENV = "BENCH_NAIVE_DB"
COMMAND_PAYLOAD = os.urandom(512)  # about the size of one stored run event
SITE_ID = "5d0c8a63-3f3b-4b4f-9a8e-0b6d8f1f2a10"
STAGE_NAMES = (
    "Keywords → Clusters",
    "Clusters → Ideas",
    "Ideas → Tasks",
    "Tasks → Content",
    "Content → Image Prompts",
    "Image Prompts → Images",
    "Manual Review Gate",
)


class StageOut(BaseModel):
    stage: int
    name: str
    status: str
    processed: int
    created: int
    credits_used: int


class RunOut(BaseModel):
    run_id: str
    site_id: str
    status: str
    trigger_type: str
    current_stage: int
    started_at: str
    paused_at: str | None
    resumed_at: str | None
    completed_at: str | None
    total_credits_used: int
    estimated_credits: int
    reserved_credits: int
    error: str | None
    stages: list[StageOut]


class CurrentRunOut(BaseModel):
    run: RunOut | None


def run_document(site_id: str = SITE_ID) -> dict[str, Any]:
    """A running run's document, shaped like the service's ``current_run`` body."""
    return {
        "run_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{site_id}")),
        "site_id": site_id,
        "status": "running",
        "trigger_type": "manual",
        "current_stage": 1,
        "started_at": "2025-01-01T00:00:00.000000Z",
        "paused_at": None,
        "resumed_at": None,
        "completed_at": None,
        "total_credits_used": 0,
        "estimated_credits": 120,
        "reserved_credits": 120,
        "error": None,
        "stages": [
            {
                "stage": number,
                "name": name,
                "status": "pending",
                "processed": 0,
                "created": 0,
                "credits_used": 0,
            }
            for number, name in enumerate(STAGE_NAMES, start=1)
        ],
    }


def seed(path: Path, site_id: str = SITE_ID) -> None:
    """The naive endpoint's database: one table, one JSON row per site."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS runs (site_id TEXT PRIMARY KEY, body TEXT)")
        conn.execute(
            "INSERT OR REPLACE INTO runs (site_id, body) VALUES (?, ?)",
            (site_id, json.dumps(run_document(site_id))),
        )


app = FastAPI(title="bench baselines")


@app.get("/bare")
async def bare() -> dict[str, Any]:
    return {"status": "ok", "service": "bench", "version": 1}


@app.get("/naive", response_model=CurrentRunOut)
def naive(site_id: str) -> CurrentRunOut:
    with closing(sqlite3.connect(os.environ[DB_ENV])) as conn:
        row = conn.execute("SELECT body FROM runs WHERE site_id = ?", (site_id,)).fetchone()
    if row is None:
        raise HTTPException(404, "site not found")
    return CurrentRunOut(run=RunOut.model_validate(json.loads(row[0])))


class Commands:
    """The ``naive_command`` endpoint's PostgreSQL tables and connection pool."""

    pool: ConnectionPool | None = None
    insert_event = sql.Composed([])
    upsert_run = sql.Composed([])

    @classmethod
    def open(cls, dsn: str, schema: str) -> None:
        events, runs = sql.Identifier(schema, "naive_events"), sql.Identifier(schema, "naive_runs")
        cls.pool = ConnectionPool(dsn, min_size=2, max_size=4, open=True)
        with cls.pool.connection() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, run_id uuid, "
                    "payload bytea)"
                ).format(events)
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (run_id uuid PRIMARY KEY, status text)"
                ).format(runs)
            )
        cls.insert_event = sql.SQL("INSERT INTO {} (run_id, payload) VALUES (%s, %s)").format(
            events
        )
        cls.upsert_run = sql.SQL(
            "INSERT INTO {} (run_id, status) VALUES (%s, 'running') "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status"
        ).format(runs)


class PgReads:
    """The ``naive_pg`` endpoint's table (one JSON row per site) and connection pool."""

    pool: ConnectionPool | None = None
    select = sql.Composed([])

    @classmethod
    def open(cls, dsn: str, schema: str) -> None:
        docs = sql.Identifier(schema, "naive_docs")
        cls.pool = ConnectionPool(dsn, min_size=2, max_size=10, open=True)
        with cls.pool.connection() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (site_id text PRIMARY KEY, body text)"
                ).format(docs)
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (site_id, body) VALUES (%s, %s) "
                    "ON CONFLICT (site_id) DO UPDATE SET body = excluded.body"
                ).format(docs),
                (SITE_ID, json.dumps(run_document())),
            )
        cls.select = sql.SQL("SELECT body FROM {} WHERE site_id = %s").format(docs)


@app.get("/naive_pg", response_model=CurrentRunOut)
def naive_pg(site_id: str) -> CurrentRunOut:
    if PgReads.pool is None:
        raise HTTPException(404, "started without --postgres")
    with PgReads.pool.connection() as conn:
        row = conn.execute(PgReads.select, (site_id,)).fetchone()
    if row is None:
        raise HTTPException(404, "site not found")
    return CurrentRunOut(run=RunOut.model_validate(json.loads(row[0])))


@app.post("/naive_command")
def naive_command() -> dict[str, Any]:
    if Commands.pool is None:
        raise HTTPException(404, "started without --postgres")
    run_id = uuid.uuid4()
    with Commands.pool.connection() as conn:  # one transaction, committed on leaving
        conn.execute(Commands.insert_event, (run_id, COMMAND_PAYLOAD))
        conn.execute(Commands.upsert_run, (run_id,))
    return {"run_id": str(run_id), "status": "running"}


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the benchmark's baseline endpoints.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="the naive endpoint's SQLite file")
    parser.add_argument("--postgres", help="DSN for naive_pg's and naive_command's tables")
    parser.add_argument("--schema", default="public", help="naive_command's schema")
    args = parser.parse_args()
    seed(args.db)
    if args.postgres:
        Commands.open(args.postgres, args.schema)
        PgReads.open(args.postgres, args.schema)
    os.environ[DB_ENV] = str(args.db)
    # The same uvicorn settings as automation.roles uses for the service (and as
    # bench.servers.UVICORN_SETTINGS records in the results).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
