"""``automation runs …``: list, start, steer and watch runs of a running service.

Every subcommand talks to the service's HTTP API through ``automation.client`` as the bearer
of ``--token``/``AUTOMATION_TOKEN``; nothing here opens the store. Answers are printed as one
JSON object (scripts read it) or, with ``--table``, as a table for people.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from automation.client import JSON, Client

TERMINAL = {"completed", "failed", "cancelled"}
DEFAULT_URL = "http://127.0.0.1:8000"
ENVIRONMENT = (
    "environment: AUTOMATION_URL (the service, default http://127.0.0.1:8000), "
    "AUTOMATION_TOKEN (an account token)"
)


def add_parser(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="the service's base URL (default: AUTOMATION_URL, else " + DEFAULT_URL + ")",
    )
    # Read from the environment at run time, so that --help never shows a token.
    common.add_argument(
        "--token", default=argparse.SUPPRESS, help="an account token (default: AUTOMATION_TOKEN)"
    )
    common.add_argument("--table", action="store_true", help="a table for people, not JSON")
    runs = commands.add_parser(
        "runs",
        help="list, start, steer and watch runs of a running service",
        description="List, start, steer and watch runs of a running service, through its "
        "HTTP API. Answers are one JSON object on stdout, or a table with --table.",
        epilog=ENVIRONMENT,
        formatter_class=formatter,
    )
    sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=ENVIRONMENT,
            formatter_class=formatter,
            parents=[common],
        )
        return parser

    command("list", "the account's runs, newest first (or one site's with --site)").add_argument(
        "--site", default=None, help="one site's id (default: every site of the account)"
    )
    command("start", "start a run now (run_now)").add_argument("site_id", help="the site's id")
    for name, text in (
        ("show", "a run as it stands now"),
        ("pause", "pause a running run at its next batch boundary"),
        ("resume", "resume a paused run"),
        ("cancel", "cancel a running or paused run"),
        ("watch", "follow a run live with progress bars until it ends"),
    ):
        command(name, text).add_argument("run_id", help="the run's id")
    logs = command("logs", "the last lines of a run's log")
    logs.add_argument("run_id", help="the run's id")
    logs.add_argument("--lines", type=int, default=100, help="how many lines (1 to 1000)")


def run(args: argparse.Namespace) -> JSON | None:
    """Carries out one subcommand; returns what to print."""
    token = getattr(args, "token", None) or os.environ.get("AUTOMATION_TOKEN")
    if not token:
        raise argparse.ArgumentError(None, "a token is needed: --token or AUTOMATION_TOKEN")
    url = getattr(args, "url", None) or os.environ.get("AUTOMATION_URL") or DEFAULT_URL
    with Client(url, token) as client:
        name = args.runs_command
        if name == "list":
            return _list(client, args.site)
        if name == "start":
            return client.run_now(args.site_id)
        if name == "show":
            return client.run_state(args.run_id)
        if name == "logs":
            return client.logs(args.run_id, args.lines)
        if name == "watch":
            return _watch(client, args.run_id, args.table)
        steer = {
            "pause": client.pause,
            "resume": client.resume,
            "cancel": client.cancel,
        }
        return steer[name](args.run_id)


def _list(client: Client, site: str | None) -> JSON:
    sites = [site] if site else [s["site_id"] for s in client.list_sites()["results"]]
    runs = [r | {"site_id": s} for s in sites for r in client.history(s)["runs"]]
    runs.sort(key=lambda r: r.get("started_at") or "", reverse=True)
    return {"runs": runs}


def _watch(client: Client, run_id: str, table: bool) -> JSON:
    run = client.run_state(run_id)["run"]
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<30}"),
        BarColumn(),
        TextColumn("{task.fields[note]}"),
        console=console,
    ) as progress:
        bars: dict[int, TaskID] = {}
        _draw(progress, bars, run, client.processing(run["site_id"], run_id))
        if run["status"] not in TERMINAL:
            for _event in client.stream(run_id, after_version=0):
                run = client.run_state(run_id)["run"]
                _draw(progress, bars, run, client.processing(run["site_id"], run_id))
    return {k: run[k] for k in ("run_id", "status", "total_credits_used", "completed_at")}


def _draw(progress: Progress, bars: dict[int, TaskID], run: JSON, processing: JSON) -> None:
    """One bar a stage: done stages full, the current one at processed of its total."""
    now = processing.get("processing") or {}
    for stage in run["stages"]:
        number, processed = stage["stage"], stage["processed"]
        total = max(processed, 1)
        if stage["status"] != "completed" and now.get("stage") == number:
            total = max(int(now.get("total") or 0), processed, 1)
        done = total if stage["status"] == "completed" else processed
        note = f"{processed} in, {stage['created']} out, {stage['credits_used']} credits"
        if number not in bars:
            bars[number] = progress.add_task(f"{number} {stage['name']}", total=total, note=note)
        progress.update(bars[number], total=total, completed=done, note=note)


# The columns of a run in a table; other answers show all their fields.
RUN_COLUMNS = ("run_id", "site_id", "status", "trigger_type", "started_at", "total_credits_used")


def print_answer(answer: JSON, table: bool) -> None:
    if not table:
        sys.stdout.write(orjson.dumps(answer).decode() + "\n")
        sys.stdout.flush()
        return
    rows: list[dict[str, Any]] = answer.get("runs") or [answer]
    columns = [c for c in RUN_COLUMNS if c in rows[0]] if "runs" in answer and rows else []
    columns = columns or (list(rows[0]) if rows else ["runs"])
    out = Table(*columns)
    for row in rows:
        out.add_row(*(_cell(row.get(c)) for c in columns))
    # Piped, a table keeps its full width: ids are not cut to fit 80 columns.
    console = Console()
    Console(width=None if console.is_terminal else 240).print(out)


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()[:60]
    return "" if value is None else str(value)
