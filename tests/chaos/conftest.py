"""The chaos suite's fixtures: a deployment per scenario, the outputs of an undisturbed run
to compare with, and a table of the measured recovery times printed at the end of pytest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chaos import Roles, Stack
from tests.support.chaos_ledger import (
    CONFIG,
    KEYWORDS,
    made,
    ok,
    open_account,
    prepared_site,
    shown_completed,
)

Made = dict[str, Counter[tuple[Any, ...]]]
_REPORT: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line (a measured time) for the summary at the end of the run."""

    def add(line: str) -> None:
        text = f"{request.node.name}: {line}"
        print(text)
        _REPORT.append(text)

    return add


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT:
        terminalreporter.section("chaos: recovery after each fault")
        for line in _REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def new_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Make a deployment's environment; whatever it left behind is removed afterwards."""
    made_stacks: list[Stack] = []

    def make(production: bool, data_dir: Path | None = None) -> Stack:
        stack = Stack(data_dir or tmp_path / f"var{len(made_stacks)}", production, tmp_path)
        made_stacks.append(stack)
        return stack

    yield make
    for stack in made_stacks:
        stack.remove()


@pytest.fixture
def roles_of() -> Iterator[Callable[..., Roles]]:
    """Start a deployment's roles; every one still running is stopped afterwards."""
    started: list[Roles] = []

    def start(stack: Stack, workers: int = 1) -> Roles:
        roles = Roles(stack, workers)
        started.append(roles)
        roles.start()
        return roles

    yield start
    for roles in started:
        roles.stop()


@pytest.fixture(scope="session")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """What the chaos runs must make: one run of the same keywords and config on the
    embedded default, with nothing going wrong (the local AI provider is deterministic)."""
    stack = Stack(tmp_path_factory.mktemp("undisturbed") / "var", production=False)
    roles = Roles(stack)
    roles.start()
    try:
        api = open_account(stack, roles)
        site = prepared_site(api, KEYWORDS, CONFIG | {"between_stage_delay": 0}, "Calm")
        run_id = ok(api.run_now(site), 202)["run_id"]
        shown_completed(api, site, run_id)
        return made(api, site)
    finally:
        roles.stop()
