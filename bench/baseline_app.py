"""The baselines the service's read endpoints are compared with, as one small FastAPI app.

* ``GET /bare``: an ``async def`` returning a small constant dict: the floor that uvicorn,
  Starlette and FastAPI cost per request on this machine.
* ``GET /naive?site_id=``: the textbook way: a sync ``def`` (so FastAPI runs it in its
  threadpool) that opens a sqlite3 connection, SELECTs one JSON row (a run document of the
  same shape as ``current_run``'s), parses it and returns it through a pydantic response
  model.

Run it as ``python -m bench.baseline_app --port P --db PATH``; it is served exactly as
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
from pydantic import BaseModel

DB_ENV = "BENCH_NAIVE_DB"
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the benchmark's baseline endpoints.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="the naive endpoint's SQLite file")
    args = parser.parse_args()
    seed(args.db)
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
