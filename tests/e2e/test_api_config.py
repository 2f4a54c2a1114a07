"""A site's automation config and the schedule it yields."""

from __future__ import annotations

import calendar
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Api

AUTOMATION = "/api/v1/automation"
BATCH_SIZES = [f"stage_{n}_batch_size" for n in range(1, 7)]
CONFIG_FIELDS = {
    "site_id",
    "is_enabled",
    "frequency",
    "scheduled_time",
    "scheduled_weekday",
    "scheduled_day_of_month",
    *BATCH_SIZES,
    "within_stage_delay",
    "between_stage_delay",
    "last_run_at",
    "next_run_at",
}


def get_config(api: Api, site: str) -> dict[str, Any]:
    answer = api.get(f"{AUTOMATION}/config", site_id=site)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def update(api: Api, site: str, changes: dict[str, Any]) -> dict[str, Any]:
    answer = api.put(f"{AUTOMATION}/update_config", changes, site_id=site)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def preview(api: Api, site: str, **params: Any) -> dict[str, Any]:
    answer = api.get(f"{AUTOMATION}/schedule_preview", site_id=site, **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def utc(value: str) -> datetime:
    assert isinstance(value, str)
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


def test_a_new_sites_config_has_every_field_with_defaults(api: Api) -> None:
    site = api.site()
    config = get_config(api, site)
    assert set(config) >= CONFIG_FIELDS
    assert config["site_id"] == site
    assert config["is_enabled"] is False  # automation is opt-in
    assert config["frequency"] in {"daily", "weekly", "monthly"}
    assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", config["scheduled_time"])
    assert config["scheduled_weekday"] in range(7)
    assert config["scheduled_day_of_month"] in range(1, 32)
    for name in BATCH_SIZES:
        assert isinstance(config[name], int)
        assert 1 <= config[name] <= 1000
    for name in ("within_stage_delay", "between_stage_delay"):
        assert isinstance(config[name], int)
        assert 0 <= config[name] <= 86_400
    assert config["last_run_at"] is None
    assert config["next_run_at"] is None  # disabled: nothing is scheduled
    # Reading again gives the same config: the defaults are stable.
    assert get_config(api, site) == config


def test_a_partial_update_returns_the_whole_config_and_persists(api: Api) -> None:
    site = api.site()
    before = get_config(api, site)
    changes = {
        "stage_1_batch_size": 1000,
        "stage_6_batch_size": 1,
        "within_stage_delay": 0,
        "between_stage_delay": 86_400,
        "frequency": "weekly",
        "scheduled_weekday": 6,
    }
    answer = update(api, site, changes)
    assert set(answer) >= CONFIG_FIELDS
    assert answer == {**before, **changes}
    assert get_config(api, site) == answer

    second = update(api, site, {"scheduled_time": "23:59"})
    assert second == {**answer, "scheduled_time": "23:59"}
    assert get_config(api, site) == second

    unchanged = update(api, site, {})
    assert unchanged == second


def test_enabling_sets_next_run_at_and_disabling_clears_it(api: Api) -> None:
    site = api.site(timezone="Europe/Berlin")
    assert get_config(api, site)["next_run_at"] is None
    enabled = update(
        api, site, {"is_enabled": True, "frequency": "daily", "scheduled_time": "03:15"}
    )
    assert enabled["is_enabled"] is True
    next_run = utc(enabled["next_run_at"])
    now = datetime.now(UTC)
    assert now < next_run <= now + timedelta(days=1, minutes=1)
    local = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (3, 15)
    assert get_config(api, site)["next_run_at"] == enabled["next_run_at"]

    disabled = update(api, site, {"is_enabled": False})
    assert disabled["next_run_at"] is None
    assert disabled["scheduled_time"] == "03:15"
    assert get_config(api, site)["next_run_at"] is None


def test_changing_the_timezone_moves_next_run_at(api: Api) -> None:
    site = api.site(timezone="UTC")
    in_utc = update(api, site, {"is_enabled": True, "scheduled_time": "12:00"})
    assert utc(in_utc["next_run_at"]).hour == 12
    in_tokyo = update(api, site, {"timezone": "Asia/Tokyo"})
    assert utc(in_tokyo["next_run_at"]).hour == 3  # 12:00 in Tokyo is 03:00 UTC
    assert preview(api, site)["timezone"] == "Asia/Tokyo"


def test_a_started_run_sets_last_run_at(api: Api) -> None:
    site = api.site()
    assert api.run_now(site).status_code == 202
    run = api.get(f"{AUTOMATION}/current_run", site_id=site).json()["run"]
    last = get_config(api, site)["last_run_at"]
    assert utc(last) == utc(run["started_at"])


def test_schedule_preview_has_count_fire_times_local_and_utc(api: Api) -> None:
    site = api.site(timezone="Europe/Berlin")
    update(api, site, {"is_enabled": True, "frequency": "daily", "scheduled_time": "03:00"})
    body = preview(api, site)
    assert body["site_id"] == site
    assert body["timezone"] == "Europe/Berlin"
    times = body["fire_times"]
    assert len(times) == 5
    berlin = ZoneInfo("Europe/Berlin")
    previous: datetime | None = None
    for entry in times:
        assert set(entry) >= {"local", "utc"}
        local = datetime.fromisoformat(entry["local"])
        assert re.search(r"[+-]\d\d:\d\d$", entry["local"]), entry
        instant = utc(entry["utc"])
        assert local == instant  # the same instant, written two ways
        assert local.utcoffset() == instant.astimezone(berlin).utcoffset()
        assert (local.hour, local.minute) == (3, 0)
        if previous is not None:
            assert instant > previous
            assert (local.date() - previous.astimezone(berlin).date()).days == 1
        previous = instant
    assert instant > datetime.now(UTC)
    assert len(preview(api, site, count=1)["fire_times"]) == 1
    assert preview(api, site, count=1)["fire_times"][0] == times[0]
    assert len(preview(api, site, count=50)["fire_times"]) == 50


def test_a_weekly_schedule_fires_on_its_weekday(api: Api) -> None:
    site = api.site(timezone="America/New_York")
    update(
        api,
        site,
        {
            "is_enabled": True,
            "frequency": "weekly",
            "scheduled_weekday": 2,
            "scheduled_time": "18:30",
        },
    )
    times = preview(api, site, count=6)["fire_times"]
    locals_ = [datetime.fromisoformat(t["local"]) for t in times]
    assert all(t.weekday() == 2 for t in locals_)
    assert all((t.hour, t.minute) == (18, 30) for t in locals_)
    gaps = {(b.date() - a.date()).days for a, b in itertools.pairwise(locals_)}
    assert gaps == {7}


def test_a_monthly_schedule_fires_on_the_last_day_of_shorter_months(api: Api) -> None:
    site = api.site()
    update(
        api,
        site,
        {
            "is_enabled": True,
            "frequency": "monthly",
            "scheduled_day_of_month": 31,
            "scheduled_time": "06:00",
        },
    )
    times = preview(api, site, count=13)["fire_times"]
    months = set()
    for entry in times:
        local = datetime.fromisoformat(entry["local"])
        last_day = calendar.monthrange(local.year, local.month)[1]
        assert local.day == last_day, entry
        assert (local.hour, local.minute) == (6, 0)
        months.add((local.year, local.month))
    assert len(months) == 13  # one firing per month
