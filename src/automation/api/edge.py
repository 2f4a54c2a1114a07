"""The first look at every request: the caller's token, then the text rule for the query
string and the path, as a plain ASGI middleware.

Under ``/api/v1/`` nothing reads a request before its token is known: not the body limit,
not FastAPI's body parsing and validation, not a site or run lookup. A stranger (no token,
another scheme, an unknown token) gets 401 ``not_authenticated`` with ``WWW-Authenticate:
Bearer`` whatever the request holds, so an anonymous client learns nothing of the API's
shapes and costs the service a header lookup, not the parsing of its body. The account goes
to the routes in the scope (``deps.current_account`` reads it).

Then a query parameter or a path holding text the stores cannot hold (``api/text.py``) is
refused, 400 ``invalid_request`` naming the parameter (or ``path``), before any route
binds it to a statement.
"""

from __future__ import annotations

from uuid import UUID

from starlette.types import ASGIApp, Receive, Scope, Send

from automation.api.auth import ACCOUNT, account_of
from automation.api.errors import (
    UNAVAILABLE,
    invalid_request,
    not_authenticated,
    response_for,
    unavailable_response,
)
from automation.api.text import path_problem, query_problem
from automation.bootstrap import Services

PROTECTED = "/api/v1/"


class Edge:
    def __init__(self, app: ASGIApp, services: Services, cache: dict[str, UUID]) -> None:
        self.app = app
        self.services = services
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(PROTECTED):
            try:
                account = await account_of(_authorization(scope), self.services, self.cache)
            except UNAVAILABLE as error:
                await unavailable_response(error)(scope, receive, send)
                return
            if account is None:
                await response_for(not_authenticated())(scope, receive, send)
                return
            scope[ACCOUNT] = account
        problem = path_problem(path) or query_problem(scope["query_string"])
        if problem is not None:
            await response_for(invalid_request(problem))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _authorization(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value).decode("latin-1")
    return ""
