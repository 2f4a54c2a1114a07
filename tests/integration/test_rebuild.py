"""Read models are disposable: a rebuild from the events equals the live view."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation.adapters.event_log import ApplicationEventSource
from automation.bootstrap import Services, all_projections
from automation.config import Settings
from automation.domain.errors import DomainError
from automation.domain.estimate import PendingWork
from projections.rebuild import rebuild, verify
from tests.conftest import settings_env

ACTIONS = st.lists(
    st.sampled_from(["start", "pause", "resume", "cancel", "complete", "fail", "config"]),
    min_size=1,
    max_size=25,
)


def play(services: Services, actions: list[str]) -> None:
    """A mix of runs, pauses, cancels and failures over two sites; refusals are skipped."""
    app = services.app
    account_id, _ = app.open_account("Acme", 1_000_000)
    sites = [app.register_site(account_id, f"Site {i}", "UTC").value.id for i in range(2)]
    runs: list = []
    for i, action in enumerate(actions):
        site = sites[i % 2]
        try:
            if action == "start":
                runs.append(app.start_run(account_id, site, PendingWork(keywords=i)).value.id)
            elif action == "config":
                app.update_config(account_id, site, {"stage_1_batch_size": i + 1})
            elif runs:
                run = runs[-1 - (i % len(runs))]
                {
                    "pause": app.pause_run,
                    "resume": app.resume_run,
                    "cancel": app.cancel_run,
                    "complete": app.complete_run,
                }.get(action, lambda a, r: app.fail_run(a, r, "the AI provider is down"))(
                    account_id, run
                )
        except DomainError:
            pass


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_a_rebuild_equals_the_live_views_after_any_mix_of_runs(
    services: Services, actions: list[str]
) -> None:
    play(services, actions)
    services.projector.catch_up()
    source = ApplicationEventSource(services.app)
    assert verify(services.views, source, all_projections()) == []


def test_verify_catches_a_hand_altered_row_and_rebuild_mends_it(services: Services) -> None:
    play(services, ["start", "pause", "start", "cancel", "resume", "complete", "start"])
    services.projector.catch_up()
    source = ApplicationEventSource(services.app)
    with services.views.write() as tx:
        tx.execute("UPDATE run_history SET summary = REPLACE(summary, 'running', 'completed')")
    differences = verify(services.views, source, all_projections())
    assert [(d.view, d.table) for d in differences] == [("history", "run_history")]
    assert differences[0].only_live
    assert differences[0].only_rebuilt
    history = [p for p in all_projections() if p.name == "history"]
    rebuild(services.views, source, history)
    assert verify(services.views, source, all_projections()) == []


def test_the_cli_verifies_and_rebuilds(services: Services, settings: Settings) -> None:
    play(services, ["start", "pause", "resume", "start", "cancel", "start"])
    services.projector.catch_up()
    env = settings_env(settings)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "automation.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("projections", "verify").returncode == 0
    with services.views.write() as tx:
        tx.execute("DELETE FROM current_runs")
    failed = cli("projections", "verify")
    assert failed.returncode == 1
    assert "current_run.current_runs" in failed.stdout
    assert cli("projections", "rebuild", "current_run").returncode == 0
    assert cli("projections", "verify").returncode == 0
    assert cli("projections", "rebuild", "nonsense").returncode != 0
