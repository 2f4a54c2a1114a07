"""Every error the API answers, in the contract's JSON shape, mapped to HTTP in one place."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from automation.domain.errors import DomainError, NotFoundError

log = logging.getLogger(__name__)

# Failures of a backing service, not of the request: answered 503, never 500.
UNAVAILABLE: tuple[type[Exception], ...] = (
    PersistenceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    ConnectionError,
)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def missing_parameter(name: str) -> ApiError:
    return ApiError(
        400,
        "missing_parameter",
        f"the query parameter {name} is required",
        {"fields": {name: "required"}},
    )


def invalid_request(fields: dict[str, str]) -> ApiError:
    return ApiError(
        400, "invalid_request", "invalid " + ", ".join(sorted(fields)), {"fields": fields}
    )


def not_authenticated() -> ApiError:
    return ApiError(401, "not_authenticated", "a valid bearer token is required")


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    response = Response(orjson.dumps(body), status, headers, media_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route answers on ``path`` (RFC 9110: a 405 lists them all)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods.update(route.methods or ())
    return sorted(methods)


def response_for(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.details)


def unavailable_response(exc: Exception) -> Response:
    # The store or the broker is down or restarting: the client may try again soon.
    log.warning("a backing service is unavailable: %s", exc)
    response = error_response(
        503, "unavailable", "a backing service is unavailable; try again shortly"
    )
    response.headers["Retry-After"] = "1"
    return response


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return response_for(exc)

    async def on_domain_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        status = 404 if isinstance(exc, NotFoundError) else 400
        return error_response(status, exc.code, exc.message, exc.details)

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields: dict[str, str] = {}
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                fields["body"] = "is not valid JSON"
                continue
            fields.setdefault(_field_name(tuple(error.get("loc", ()))), str(error.get("msg")))
        return error_response(
            400, "invalid_request", "invalid " + ", ".join(sorted(fields)), {"fields": fields}
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}
        code = codes.get(exc.status_code, "http_error")
        status = exc.status_code if exc.status_code in codes else 400
        headers = dict(exc.headers or {})
        if status == 405:
            # Starlette names only the methods of the first route on the path.
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return error_response(status, code, str(exc.detail), headers=headers)

    async def on_unavailable(_: Request, exc: Exception) -> Response:
        return unavailable_response(exc)

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "the server could not answer")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
