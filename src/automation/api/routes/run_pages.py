"""Runs and scheduled slots page by page: ``history`` with filters, the account-wide
``runs`` listing, and a site's ``slots``.

Every page answers ``next_cursor``: an opaque string to pass back as ``cursor`` for the
next page, null on the last. Parameters these listings do not know are refused (400), so a
misspelt filter never silently lists everything.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from automation.api.answers import RunPage, SlotPage, ok
from automation.api.deps import caller_site, current_account
from automation.api.errors import invalid_request
from automation.api.openapi import query_id
from automation.api.reads import Reads
from automation.api.responses import raw_json
from automation.domain.values import RunStatus, TriggerType
from projections.run_listing import RunFilter, runs_page
from projections.slots import slots_page

router = APIRouter(prefix="/api/v1/automation", tags=["automation"])

PAGE = ("limit", "cursor")
FILTERS = ("status", "trigger", "since", "until")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def _query(name: str, schema: dict[str, object], text: str) -> dict[str, object]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


PAGE_PARAMETERS = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20},
        "runs on a page",
    ),
    _query("cursor", {"type": "string", "maxLength": 64}, "next_cursor of the page before"),
]
FILTER_PARAMETERS = [
    _query("status", {"type": "string", "enum": [s.value for s in RunStatus]}, "only runs in it"),
    _query(
        "trigger",
        {"type": "string", "enum": [t.value for t in TriggerType]},
        "only runs started so",
    ),
    _query("since", {"type": "string", "format": "date-time"}, "only runs started at or after"),
    _query("until", {"type": "string", "format": "date-time"}, "only runs started before"),
]


def listing_params(request: Request, known: tuple[str, ...]) -> tuple[RunFilter, int, int | None]:
    """The page and filters a request asks for, each checked; unknown names refused."""
    given = request.query_params
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise invalid_request({name: "unknown parameter" for name in unknown})
    fields: dict[str, str] = {}
    limit = DEFAULT_LIMIT
    if "limit" in given:
        raw = given["limit"]
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            fields["limit"] = f"must be a whole number from 1 to {MAX_LIMIT}"
        else:
            limit = int(raw)
    before = _cursor(given.get("cursor"), fields)
    status, trigger = given.get("status"), given.get("trigger")
    if status is not None and status not in {s.value for s in RunStatus}:
        fields["status"] = "must be one of " + ", ".join(s.value for s in RunStatus)
    if trigger is not None and trigger not in {t.value for t in TriggerType}:
        fields["trigger"] = "must be one of " + ", ".join(t.value for t in TriggerType)
    since, until = _time(given, "since", fields), _time(given, "until", fields)
    if fields:
        raise invalid_request(fields)
    return RunFilter(status, trigger, since, until), limit, before


def _cursor(raw: str | None, fields: dict[str, str]) -> int | None:
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw.encode("ascii") + b"==").decode("ascii")
        if text.startswith("p") and text[1:].isdigit() and len(text) < 20:
            return int(text[1:])
    except (UnicodeError, ValueError, binascii.Error):
        pass
    fields["cursor"] = "not a cursor this listing gave"
    return None


def cursor_of(position: int | None) -> str | None:
    if position is None:
        return None
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def _time(given: QueryParams, name: str, fields: dict[str, str]) -> datetime | None:
    raw = given.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        fields[name] = "must be an ISO 8601 date and time"
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _page(items: list[str], key: str, next_position: int | None) -> Response:
    cursor = cursor_of(next_position)
    tail = '"' + cursor + '"' if cursor else "null"
    return raw_json(f'{{"{key}":[' + ",".join(items) + f'],"next_cursor":{tail}}}')


async def site_history_page(request: Request) -> Response:
    """``history`` asked with paging or filters (see hot_reads.history)."""
    reads, site_id = await caller_site(request)
    keep, limit, before = listing_params(request, ("site_id", *PAGE, *FILTERS))
    account_id = await current_account(request)
    found, after = await reads.query(runs_page, str(account_id), str(site_id), keep, limit, before)
    return _page(found, "runs", after)


@router.get(
    "/runs",
    responses=ok(RunPage),
    openapi_extra={"parameters": PAGE_PARAMETERS + FILTER_PARAMETERS},
)
async def list_runs(request: Request) -> Response:
    """Runs of every site of the account, newest first."""
    account_id = await current_account(request)
    keep, limit, before = listing_params(request, (*PAGE, *FILTERS))
    reads: Reads = request.app.state.reads
    found, after = await reads.query(runs_page, str(account_id), None, keep, limit, before)
    return _page(found, "runs", after)


@router.get(
    "/slots",
    responses=ok(SlotPage),
    openapi_extra={"parameters": [query_id("site_id"), *PAGE_PARAMETERS]},
)
async def schedule_slots(request: Request) -> Response:
    """The site's scheduled slots, newest first: started, skipped (and why) or missed."""
    reads, site_id = await caller_site(request)
    _, limit, before = listing_params(request, ("site_id", *PAGE))
    found, after = await reads.query(slots_page, site_id, limit, before)
    return _page(found, "slots", after)
