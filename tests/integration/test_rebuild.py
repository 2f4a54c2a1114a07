"""Read models are disposable: a rebuild from the events equals the live view."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation.adapters.event_log import ApplicationEventSource
from automation.bootstrap import Services, all_projections
from automation.config import Settings
from automation.domain.errors import DomainError
from automation.domain.estimate import PendingWork
from projections.configs import config_document
from projections.rebuild import rebuild, verify
from projections.runtime import Notification
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


class SaveDuringTheFold:
    """The log as a rebuild reads it, which stores a config change on its first read and
    then gives the live projector three seconds to show it."""

    def __init__(self, services: Services, save: Callable[[], int]) -> None:
        self.source = ApplicationEventSource(services.app)
        self.projector, self.save = services.projector, save
        self.saved_at = 0
        self.shown_meanwhile: bool | None = None

    def read(self, after: int, limit: int) -> list[Notification]:
        if self.shown_meanwhile is None:
            self.saved_at = self.save()
            self.shown_meanwhile = self.projector.wait_for(self.saved_at, timeout=3)
        return self.source.read(after, limit)

    def last_position(self) -> int:
        return self.source.last_position()


def test_the_live_projector_keeps_going_while_a_rebuild_folds_the_log(
    services: Services,
) -> None:
    """A rebuild reads and folds the log before it claims the views' positions, so the
    live projector is not held up for that part; what is stored meanwhile is in the
    rebuilt views all the same."""
    play(services, ["start", "pause", "config", "start", "cancel", "resume"])
    app = services.app
    account_id, _ = app.open_account("Other", 10)
    site_id = app.register_site(account_id, "Late", "UTC").value.id
    services.start_following()
    services.projector.start(poll_interval=0.1)
    try:
        assert services.projector.wait_for(app.recorder.max_notification_id() or 0, timeout=5)

        def save() -> int:
            return app.update_config(account_id, site_id, {"stage_1_batch_size": 7}).position

        source = SaveDuringTheFold(services, save)
        rebuild(services.views, source, all_projections())
        assert source.shown_meanwhile is True
        assert services.projector.positions() == dict.fromkeys(
            [p.name for p in all_projections()], source.last_position()
        )
        assert verify(services.views, source.source, all_projections()) == []
        with services.views.read() as tx:
            stored = config_document(tx, site_id)
        assert stored is not None
        assert stored["config"]["stage_1_batch_size"] == 7
    finally:
        services.projector.stop()


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
