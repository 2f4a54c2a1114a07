"""``automation projections rebuild [NAME]`` and ``automation projections verify``."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from automation.adapters.event_log import ApplicationEventSource
from automation.bootstrap import all_projections, build
from automation.config import Settings
from projections.rebuild import PASS, rebuild, verify
from projections.runtime import Projection


def _chosen(name: str | None) -> list[Projection]:
    projections = all_projections()
    if name is None:
        return projections
    chosen = [p for p in projections if p.name == name]
    if not chosen:
        names = ", ".join(p.name for p in projections)
        raise SystemExit(f"no read model called {name!r}; there are: {names}")
    return chosen


def rebuild_command(settings: Settings, name: str | None) -> int:
    chosen = _chosen(name)
    services = build(settings)
    console = Console(stderr=True)
    try:
        source = ApplicationEventSource(services.app)
        with Progress(
            TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            # One pass over the log feeds every view; then each view writes its rows.
            bars = {PASS: progress.add_task("events read", total=None)}
            bars |= {p.name: progress.add_task(f"{p.name} rows", total=None) for p in chosen}

            def show(view: str, reached: int, end: int) -> None:
                progress.update(bars[view], completed=reached, total=end)

            rebuild(services.views, source, chosen, show)
        console.print(f"rebuilt {', '.join(p.name for p in chosen)}")
    finally:
        services.close()
    return 0


def verify_command(settings: Settings) -> int:
    services = build(settings)
    console = Console()
    try:
        broken = services.app.broken_seals()
        differences = verify(
            services.views, ApplicationEventSource(services.app), all_projections()
        )
    finally:
        services.close()
    for seal in broken:
        console.print(
            f"run {seal.run_id}: stored event {seal.version} (or one before it) was "
            "altered: its seal does not match",
            markup=False,
        )
    for difference in differences:
        for line in difference.describe():
            console.print(line, markup=False)
    if broken or differences:
        console.print(
            f"{len(broken)} run(s) with altered events, {len(differences)} "
            "table(s) that differ from a rebuild"
        )
        return 1
    console.print(
        "every run's events match their seals, and every read model equals its "
        "rebuild from the events"
    )
    return 0
