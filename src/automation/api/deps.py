"""Request dependencies: the caller's account, ids from the query string, the services."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from automation.api.auth import ACCOUNT, account_of
from automation.api.errors import invalid_request, missing_parameter, not_authenticated
from automation.api.reads import Reads
from automation.application.app import AutomationApp
from automation.bootstrap import Services


# The dependencies are ``async def`` although they do not wait for anything: FastAPI runs a
# plain ``def`` dependency in a worker thread, and that hand-off costs more than the read.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_reads(request: Request) -> Reads:
    reads: Reads = request.app.state.reads
    return reads


async def get_app(request: Request) -> AutomationApp:
    services: Services = request.app.state.services
    return services.app


async def current_account(request: Request) -> UUID:
    """The caller's account, as ``api/edge.py`` found it before anything read the request
    (or, for a route outside its reach, found here the same way)."""
    account_id: UUID | None = request.scope.get(ACCOUNT)
    if account_id is None:
        account_id = await account_of(
            request.headers.get("authorization", ""),
            request.app.state.services,
            request.app.state.token_cache,
        )
        if account_id is None:
            raise not_authenticated()
    return account_id


def optional_uuid(request: Request, name: str) -> UUID | None:
    """An optional id in the query string: absent is None, malformed is a 400."""
    raw = request.query_params.get(name)
    return None if raw in (None, "") else _uuid_param(request, name)


def _uuid_param(request: Request, name: str) -> UUID:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        raise missing_parameter(name)
    try:
        return UUID(raw)
    except ValueError:
        raise invalid_request({name: "must be a UUID"}) from None


AccountId = Annotated[UUID, Depends(current_account)]
ReadsDep = Annotated[Reads, Depends(get_reads)]
AppDep = Annotated[AutomationApp, Depends(get_app)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def owned_site_id(request: Request, account_id: AccountId, reads: ReadsDep) -> UUID:
    """The ``site_id`` query parameter, naming a site of the caller's account."""
    return await reads.owned_site(account_id, _uuid_param(request, "site_id"))


async def caller_site(request: Request) -> tuple[Reads, UUID]:
    """Authentication and the owned ``site_id`` in one call, without FastAPI's dependency
    machinery: the hottest reads use it, where that machinery costs more than the read."""
    account_id = await current_account(request)
    reads: Reads = request.app.state.reads
    return reads, await reads.owned_site(account_id, _uuid_param(request, "site_id"))


async def owned_run_id(request: Request, account_id: AccountId, reads: ReadsDep) -> UUID:
    """The ``run_id`` query parameter, naming a run of the caller's account."""
    run_id, _ = await reads.owned_run(account_id, _uuid_param(request, "run_id"))
    return run_id


async def run_id_param(request: Request, _: AccountId) -> UUID:
    """The ``run_id`` query parameter, parsed only: commands check ownership in the store."""
    return _uuid_param(request, "run_id")


SiteId = Annotated[UUID, Depends(owned_site_id)]
RunIdParam = Annotated[UUID, Depends(run_id_param)]
RunId = Annotated[UUID, Depends(owned_run_id)]
