from __future__ import annotations

from tests.conftest import Api, error_code


def test_a_run_can_be_started_paused_and_seen_paused(api: Api) -> None:
    site = api.site()
    assert api.keywords(site, ["best trail shoes"]).status_code == 201
    started = api.run_now(site)
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert api.post("/api/v1/automation/pause", run_id=run_id).json()["status"] == "paused"
    run = api.get("/api/v1/automation/current_run", site_id=site).json()["run"]
    assert run["status"] == "paused"
    again = api.post("/api/v1/automation/pause", run_id=run_id)
    assert (again.status_code, error_code(again)) == (400, "invalid_state")
