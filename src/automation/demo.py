"""``automation demo``: the whole pipeline on a fresh embedded data dir, live on the terminal."""

from __future__ import annotations

import asyncio
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from automation.application.ports import KeywordInput
from automation.bootstrap import Services, build
from automation.config import Settings
from automation.domain.estimate import error_ratio
from automation.domain.run import AutomationRun
from automation.domain.values import STAGE_NAMES, Stage
from consumers.runtime import BackgroundRoles

DEMO_CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "stage_1_batch_size": 20,
    "stage_2_batch_size": 5,
    "stage_3_batch_size": 20,
    "stage_4_batch_size": 5,
    "stage_5_batch_size": 10,
    "stage_6_batch_size": 10,
}


def demo_keywords() -> list[str]:
    text = files("automation").joinpath("data/demo_keywords.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _data_dir(requested: Path | None) -> Path:
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="automation-demo-"))
    if (requested / "events.db").exists():
        raise SystemExit(f"{requested} already holds data; the demo needs a fresh data dir")
    return requested


def main(settings: Settings, data_dir: Path | None) -> int:
    console = Console()
    directory = _data_dir(data_dir)
    embedded = settings.model_copy(
        update={"automation_data_dir": directory, "database_url": None, "amqp_url": None}
    )
    services = build(embedded)
    try:
        return asyncio.run(_run(services, console, directory))
    finally:
        services.close()


async def _run(services: Services, console: Console, directory: Path) -> int:
    app = services.app
    account_id, _ = app.open_account("Demo account", 1_000_000)
    site_id = app.register_site(account_id, "Demo site", "UTC").value.id
    app.update_config(account_id, site_id, DEMO_CONFIG)
    keywords = demo_keywords()
    imported = services.content.add_keywords(
        site_id, [KeywordInput(k) for k in keywords], app.clock.now()
    )
    estimate = app.estimate(account_id, site_id, services.content.pending_work(site_id))
    console.print(f"[bold]Data dir[/bold] {directory}")
    console.print(
        f"Imported {imported.created} keywords; estimated "
        f"{estimate['estimated_credits']} credits "
        f"({estimate['required_credits']} reserved)"
    )
    services.start_following()
    services.projector.start()
    roles = BackgroundRoles(services, orchestrator=True, workers=True)
    await roles.start()
    started = time.monotonic()
    balance_before = app.balance(account_id)
    run_id = app.start_run(account_id, site_id, services.content.pending_work(site_id)).value.id
    run = await _follow(services, console, account_id, site_id, run_id)
    elapsed = time.monotonic() - started
    await roles.stop()
    _summary(console, run, elapsed, balance_before - app.balance(account_id), estimate)
    return 0 if run.status.value == "completed" else 1


async def _follow(
    services: Services, console: Console, account_id: UUID, site_id: UUID, run_id: UUID
) -> AutomationRun:
    columns = (
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bars = {int(s): progress.add_task(f"{int(s)}. {STAGE_NAMES[s]}", total=None) for s in Stage}
        while True:
            run = services.app.run(account_id, run_id)
            counts = services.content.counts(site_id)
            for stage, bar in bars.items():
                processed = run.stages[stage]["processed"]
                pending = counts[stage][0] if run.stages[stage]["status"] != "completed" else 0
                progress.update(bar, completed=processed, total=max(processed + pending, 1))
            if not run.is_active:
                return run
            await asyncio.sleep(0.1)


def _summary(
    console: Console, run: AutomationRun, elapsed: float, charged: int, estimate: dict[str, Any]
) -> None:
    table = Table(title=f"Run {run.id}: {run.status.value} in {elapsed:.1f} s")
    for column in ("Stage", "Processed", "Created", "Estimated", "Credits"):
        table.add_column(column, justify="left" if column == "Stage" else "right")
    basis = {s["stage"]: s for s in estimate.get("basis", {}).get("stages", [])}
    for stage in Stage:
        result = run.stages[int(stage)]
        planned = basis.get(int(stage))
        table.add_row(
            f"{int(stage)}. {STAGE_NAMES[stage]}",
            str(result["processed"]),
            str(result["created"]),
            f"{planned['credits']} ({planned['source']})" if planned else "",
            str(result["credits_used"]),
        )
    estimated = estimate["estimated_credits"]
    table.add_row("Total", "", "", str(estimated), str(run.total_credits_used), style="bold")
    console.print(table)
    console.print(
        f"Estimated {estimated} credits, used "
        f"{run.total_credits_used}; the account was charged {charged}."
    )
    ratio = error_ratio(estimated, run.total_credits_used)
    if ratio is not None:
        console.print(f"Estimate accuracy: error {ratio:+.1%} (used / estimated - 1).")
    if run.error:
        console.print(f"[red]The run failed:[/red] {run.error}")
