"""The OpenAPI document, made to say what the API really answers.

FastAPI documents what it can see: the parameters a route declares, and a 422 for its own
validation. This API reads its ids from the query string by hand (on the hot paths the
dependency machinery costs more than the read, and a malformed id must be a 400, not a
422), answers every error in one JSON envelope with 400, 401, 404 or 503, and wants a
bearer token on everything under ``/api/v1/``. The document is completed here from the
routes themselves, once, when it is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from automation.api.deps import owned_run_id, owned_site_id, run_id_param

PROTECTED = "/api/v1/"
SECURITY_SCHEME = "bearer"

# Dependencies that read a required id from the query string by hand.
QUERY_IDS: dict[Callable[..., Any], str] = {
    owned_site_id: "site_id",
    owned_run_id: "run_id",
    run_id_param: "run_id",
}

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

ERRORS = {
    "400": "a parameter or the body is missing, malformed or out of range; or the request "
    "is not allowed in the current state (`error.code` says which)",
    "401": "no bearer token, or an unknown one (`not_authenticated`)",
    "404": "the site, run or item does not exist, or belongs to another account",
    "503": "the store or the broker is unavailable (`unavailable`, with `Retry-After`), or "
    "the read models did not show a command in time (`not_ready`; the command was applied)",
}


def query_id(name: str, required: bool = True) -> dict[str, Any]:
    """An id in the query string, as an OpenAPI parameter."""
    return {"name": name, "in": "query", "required": required, "schema": dict(UUID_SCHEMA)}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                _api_routes(app),
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _api_routes(app: FastAPI) -> list[RouteContext]:
    return [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]


def _complete(document: dict[str, Any], routes: list[RouteContext]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
    }
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    # FastAPI's own validation errors are answered 400 in the envelope (errors.py).
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for route in routes:
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format or "", {}).get(method.lower())
            if operation is not None:
                _complete_operation(operation, route)
    _link(document, ("/api/v1/sites", "post", "201"), "site_id")
    _link(document, ("/api/v1/automation/run_now", "post", "202"), "run_id")
    return document


def _link(document: dict[str, Any], source: tuple[str, str, str], name: str) -> None:
    """OpenAPI links from the answer that makes an id to every operation that takes it, so
    a client (or a stateful test tool) can follow the workflow: create a site, then use it;
    start a run, then steer and read it."""
    path, method, status = source
    links: dict[str, Any] = {}
    for operations in document["paths"].values():
        for operation in operations.values():
            places = [p["in"] for p in operation.get("parameters", []) if p["name"] == name]
            if places and operation.get("operationId"):
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {f"{places[0]}.{name}": f"$response.body#/{name}"},
                }
    document["paths"][path][method]["responses"][status]["links"] = links


def _complete_operation(operation: dict[str, Any], route: RouteContext) -> None:
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter["name"] in QUERY_IDS.values():  # a run or site id, in the path too
            parameter["schema"] = dict(UUID_SCHEMA)
    declared = {(p["name"], p["in"]) for p in parameters}
    for name in _query_ids(route.dependant):
        if (name, "query") not in declared:
            parameters.append(query_id(name))
            declared.add((name, "query"))
    if not parameters:
        del operation["parameters"]
    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)
    if not (route.path_format or "").startswith(PROTECTED):
        return  # health, readiness and metrics document their own answers
    operation["security"] = [{SECURITY_SCHEME: []}]
    statuses = ["401", "503"]
    if parameters or "requestBody" in operation:
        statuses.append("400")
    if any(p["in"] == "path" or p["name"] in QUERY_IDS.values() for p in parameters):
        statuses.append("404")
    for status in sorted(statuses):
        responses.setdefault(status, _error(ERRORS[status]))


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query_ids(dependant: Dependant) -> Iterator[str]:
    for dependency in dependant.dependencies:
        name = QUERY_IDS.get(dependency.call) if dependency.call else None
        if name is not None:
            yield name
        yield from _query_ids(dependency)
