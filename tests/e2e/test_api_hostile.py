"""Hostile values in every parameter and body field of every documented operation, sent by
the caller and by a stranger, on both backends.

Each operation of ``/openapi.json`` gets, one slot at a time, every value of
``tests/support/hostile.py`` (integers past 64 bits, NUL and other control characters, lone
surrogates, bidi overrides, 100,000 characters, bytes that are not UTF-8, JSON nested a
thousand deep...) with the rest of the request valid and naming a real site and run, so the
value reaches the code behind the checks. The caller must never get a 5xx: an answer is a
success, or an error in the contract's shape whose ``details.fields`` names the slot, and
either is an answer the document lists for the operation, with the body it documents
(checked by schemathesis against the same document). A
stranger (no token, or an unknown one) must get 401 ``not_authenticated`` with
``WWW-Authenticate: Bearer`` for every one of them: authentication comes before anything
reads the request. Nothing refused is kept: the sites and keywords the account has at the
end are exactly those of the answers that said they were created.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.core.failures import FailureGroup

from tests.conftest import Api, RunningServer
from tests.support.hostile import (
    BODY_KEYS,
    BODY_VALUES,
    HEADER_VALUES,
    PARAMETER_VALUES,
    Operation,
    Slot,
    encode,
    operations,
)

STORE_INT_MAX = 2**63 - 1
STRANGERS = [None, "Bearer atk_nobody-has-this-token", "Bearer " + "t" * 300, "Basic Zm9vOmJhcg=="]


@pytest.fixture
def ids(api: Api) -> dict[str, str]:
    """A real site with keywords, and a real run of it that has ended (so its stream ends)."""
    site_id = api.site()
    assert api.keywords(site_id, ["trail shoes", "running socks"]).status_code == 201
    run_id = api.run_now(site_id).json()["run_id"]
    assert api.post("/api/v1/automation/cancel", run_id=run_id).status_code == 200
    return {"site_id": site_id, "run_id": run_id}


def _requests(
    operation: Operation, ids: dict[str, str], every: bool = True
) -> Iterator[tuple[Slot, dict[str, Any]]]:
    """(slot, request) for every hostile value (or only the first) in every slot."""
    for slot in operation.slots():
        if slot.where == "body":
            values: list[Any] = BODY_KEYS if slot.steps == (("key",),) else BODY_VALUES
        else:
            values = HEADER_VALUES if slot.where == "header" else PARAMETER_VALUES
        for value in values if every else values[:1]:
            yield slot, _request(operation, ids, slot, value)


def _request(operation: Operation, ids: dict[str, str], slot: Slot, value: Any) -> dict[str, Any]:
    path, query = operation.path, []
    headers: dict[str, str | bytes] = {}
    for parameter in operation.parameters:
        name, where = parameter["name"], parameter["in"]
        if (slot.where, slot.name) == (where, name):
            raw: bytes | None = value
        elif name in ids:
            raw = ids[name].encode()
        elif where == "path":
            raw = str(uuid.uuid4()).encode()  # names nothing: a 404 at worst
        else:
            raw = None  # optional parameters are left out
        if raw is None:
            continue
        if where == "path":
            path = path.replace("{" + name + "}", encode(raw))
        elif where == "query":
            query.append(f"{name}={encode(raw)}")
        else:
            headers[name] = raw
    body = None
    if operation.body is not None:
        headers["content-type"] = "application/json"
        if slot.where == "body":
            body = operation.body_with(slot, value).encode()
        else:
            body = json.dumps(operation.example(operation.body)).encode()
    url = path + ("?" + "&".join(query) if query else "")
    return {"method": operation.method, "url": url, "headers": headers, "content": body}


def _send(client: httpx.Client, request: dict[str, Any]) -> tuple[httpx.Response, Any]:
    """The answer and its JSON (None for an event stream, which is not read: it may go on)."""
    with client.stream(**request) as answer:
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            return answer, None
        answer.read()
        return answer, (answer.json() if _is_json(answer) else None)


def _is_json(answer: httpx.Response) -> bool:
    return str(answer.headers.get("content-type", "")).startswith("application/json")


def _names(slot: Slot) -> set[str]:
    """What ``details.fields`` may call the slot."""
    top = slot.name.split(".")[0]
    names = {slot.name, top, slot.name.lower().replace("-", "_")}
    if slot.where == "body" and (not slot.steps or slot.steps == (("key",),)):
        names.add("body")
    if slot.where == "path":
        names.add("path")  # text the stores cannot hold is refused before routing
    return names


def _problem(
    operation: Operation,
    documented: Any,
    validated: set[tuple[str, int, str]],
    slot: Slot,
    answer: httpx.Response,
    data: Any,
) -> str | None:
    """What is wrong with the caller's answer, or None."""
    status = answer.status_code
    if status >= 500:
        return f"{status}: {answer.text[:200]}"
    if 300 <= status < 400:
        return None  # a redirect: the path (an empty id) names another operation
    if str(status) not in operation.responses:
        return f"{status} is not among the document's answers: {answer.text[:200]}"
    error = data.get("error") if isinstance(data, dict) else None
    shape = (operation.label, status, str(error.get("code")) if isinstance(error, dict) else "")
    if data is not None and shape not in validated:
        try:
            documented.validate_response(answer)  # the body has the documented shape
        except (AssertionError, FailureGroup) as failure:
            return f"{status} not as documented: {failure}"[:300]
        validated.add(shape)  # once per operation, status and error code: it is not cheap
    if status < 400:
        return None
    if not _is_json(answer) or not isinstance(data, dict) or set(data) != {"error"}:
        return f"{status} without the error envelope: {answer.text[:200]}"
    error = data["error"]
    if not (
        isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("details"), dict)
    ):
        return f"malformed envelope: {answer.text[:200]}"
    if error["code"] in ("invalid_request", "missing_parameter"):
        fields = error["details"].get("fields", {})
        named = {f.split(".")[0] for f in fields} | set(fields)
        if slot.where == "body" and slot.steps and slot.steps != (("key",),):
            return None if named & _names(slot) or "body" in named else f"names {fields}"
        if not named & _names(slot) and slot.where != "body":
            return f"names {sorted(fields)}, not {slot.name}"
    return None


def test_the_callers_hostile_values_are_refused_cleanly_or_kept_faithfully(
    server: RunningServer, api: Api, ids: dict[str, str]
) -> None:
    document = api.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    validated: set[tuple[str, int, str]] = set()
    created_sites = created_keywords = sent = 0
    for operation in operations(document):
        documented = schema[operation.path][operation.method]
        for slot, request in _requests(operation, ids):
            sent += 1
            try:
                answer, data = _send(api.http, request)
            except httpx.TransportError as error:  # the server dropped the connection
                failures.append(f"{operation.label} {slot.where} {slot.name!r}: {error!r}")
                continue
            problem = _problem(operation, documented, validated, slot, answer, data)
            if problem is not None:
                failures.append(f"{operation.label} {slot.where} {slot.name!r}: {problem}")
            elif answer.status_code == 201 and operation.path == "/api/v1/sites":
                created_sites += 1
            elif answer.status_code == 201 and operation.path == "/api/v1/planner/keywords":
                created_keywords += int(data["created"])
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures[:60])
    assert sent > 1500
    # Nothing refused was kept: only what the answers said was created is there.
    sites = api.get("/api/v1/sites").json()["results"]
    assert len(sites) == 1 + created_sites
    count = api.get("/api/v1/planner/keywords", site_id=ids["site_id"], limit=1).json()["count"]
    assert count == 2 + created_keywords


def test_strangers_get_401_before_anything_reads_their_request(
    server: RunningServer, api: Api, ids: dict[str, str]
) -> None:
    document = api.get("/openapi.json").json()
    failures: list[str] = []
    protected = [op for op in operations(document) if op.path.startswith("/api/v1/")]
    assert len(protected) >= 28
    for authorization in STRANGERS:
        headers = {} if authorization is None else {"authorization": authorization}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as stranger:
            for operation in protected:
                # Every value without a token; the first of each slot with a bad one.
                for slot, request in _requests(operation, ids, authorization is None):
                    answer, data = _send(stranger, request)
                    if not (
                        answer.status_code == 401
                        and answer.headers.get("www-authenticate") == "Bearer"
                        and isinstance(data, dict)
                        and data.get("error", {}).get("code") == "not_authenticated"
                    ):
                        failures.append(
                            f"{authorization!r} {operation.label} {slot.where} {slot.name!r}: "
                            f"{answer.status_code} {answer.text[:120]}"
                        )
    assert not failures, f"{len(failures)}:\n" + "\n".join(failures[:60])


def test_every_parameter_of_the_document_is_bounded(api: Api) -> None:
    """A parameter the document leaves unbounded is one a client can overflow: every integer
    has a maximum the stores can hold, every text a maximum length, a format or a set of
    values."""
    document = api.get("/openapi.json").json()
    unbounded = []
    for operation in operations(document):
        for parameter in operation.parameters:
            schema = parameter["schema"]
            kinds = [schema, *schema.get("anyOf", [])]
            for kind in kinds:
                if (
                    kind.get("type") == "integer"
                    and not kind.get("maximum", 2**64) <= STORE_INT_MAX
                ):
                    unbounded.append((operation.label, parameter["name"], kind))
                if kind.get("type") == "string" and not {"maxLength", "format", "enum"} & set(kind):
                    unbounded.append((operation.label, parameter["name"], kind))
    assert not unbounded
