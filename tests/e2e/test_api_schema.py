"""The whole API against its own OpenAPI document, with generated requests (schemathesis).

Every operation of ``/openapi.json`` gets requests built from its schema, valid and
invalid, with and without the token, and each answer must:

* never be a server error (the contract: nothing a client sends yields a 500);
* have a status the document lists for the operation (so never 422, which the contract
  forbids and the document no longer mentions), a documented content type and headers;
* refuse data the schema rules out, and refuse a missing or unknown token;
* for a method the path does not have, be a 405 whose ``Allow`` names every method it has.

Random ids name nothing, so each request that carries a ``site_id`` or ``run_id`` is sent a
second time with a real site or run of the caller's account in their place: the generated
bodies and parameters then reach the code behind the 404.

Left out: ``positive_data_acceptance`` (every schema-valid request accepted). The schema
cannot say everything the API checks: that a timezone is an IANA name, that a config field
may be left out but not set to null, or that a site with a running run refuses ``run_now``.
The event stream is left out too: it answers until its run ends.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import Api, RunningServer

WORKFLOWS = 20  # sequences of up to 8 calls each
EXAMPLES = 25  # per operation and mode: about 3,000 requests a backend, in about 15 s
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


@pytest.fixture
def real_ids(api: Api) -> dict[str, str]:
    site_id = api.site()
    assert api.keywords(site_id, ["trail shoes", "running socks"]).status_code == 201
    answer = api.run_now(site_id)
    assert answer.status_code == 202, answer.text
    return {"site_id": site_id, "run_id": answer.json()["run_id"]}


def _with_real_ids(case: Any, ids: dict[str, str]) -> bool:
    """Put the real ids in place of the generated ones; False if the case has none."""
    replaced = False
    for container in (case.query, case.path_parameters):
        for name in ("site_id", "run_id"):
            if container is not None and name in container:
                container[name] = ids[name]
                replaced = True
    return replaced


def _document(server: RunningServer, api: Api) -> Any:
    """The served document, with the caller's token given as its bearer scheme: valid cases
    carry it, invalid ones may lack or spoil it, and ``ignored_auth`` sends each again
    without it."""
    document = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    token = api.http.headers["authorization"]

    @document.auth()
    class CallersToken:
        def get(self, case: Any, context: Any) -> str:
            return token

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": data}

    for container in ("query", "path_parameters"):
        document.hook(f"flatmap_{container}")(_sometimes_hostile(HOSTILE_PARAMETERS))
    document.hook("flatmap_body")(_sometimes_hostile(HOSTILE_BODY))
    return document.exclude(path_regex="/stream$")


# Values the schema would never generate, put in place of generated ones (the client sends
# text as UTF-8, so lone surrogates go in bodies only; test_api_hostile.py sends raw bytes).
HOSTILE_PARAMETERS = [
    str(2**64),
    str(-(2**64)),
    "1" + "0" * 400,
    "1e400",
    "\x00",
    "new\x00",
    "\x1b[2J\x85",
    "\u202egnp.exe",
    "\ufeff\u200b",
    "a" * 10_000,
]
HOSTILE_BODY: list[Any] = [
    2**64,
    -(2**64),
    10**400,
    "\ud800",
    "a\udfffb",
    "\x00",
    "\x1b\x85",
    "\u202e\u2066",
    "a" * 100_000,
    ["\ud800"],
    [{"keyword": "\ud800", "volume": 2**64}],
    [[[[[[[[[[[]]]]]]]]]]],
]


def _sometimes_hostile(values: list[Any]) -> Any:
    """A schemathesis ``flatmap_*`` hook: the generated parameters or body as they are, or
    with one of their values replaced by a hostile one."""

    def flatmap(context: Any, generated: Any) -> st.SearchStrategy[Any]:
        if not isinstance(generated, dict) or not generated:
            return st.just(generated)

        def with_hostile(name: str) -> st.SearchStrategy[Any]:
            return st.sampled_from(values).map(lambda value: {**generated, name: value})

        return st.one_of(
            st.just(generated), st.sampled_from(sorted(generated)).flatmap(with_hostile)
        )

    return flatmap


def test_every_answer_is_one_the_document_promises(
    server: RunningServer, api: Api, real_ids: dict[str, str]
) -> None:
    document = _document(server, api)
    excluded = [positive_data_acceptance]
    tested = 0
    for result in document.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def answers_as_documented(case: Any) -> None:
                case.call_and_validate(base_url=server.url, excluded_checks=excluded)
                if _with_real_ids(case, real_ids):
                    # The real ids may have mended what made the case invalid.
                    also = [*excluded, negative_data_rejection]
                    case.call_and_validate(base_url=server.url, excluded_checks=also)

            try:
                answers_as_documented()
            except Unsatisfiable:
                # Nothing of it can be made invalid (no parameter, body or token).
                assert mode is GenerationMode.NEGATIVE, operation.label
        tested += 1
    assert tested >= 30  # every operation but the stream was generated for


def test_workflows_along_the_documents_links_answer_as_promised(
    server: RunningServer, api: Api
) -> None:
    """Sequences of calls that follow the document's links (a new site's id into the
    operations that take a site, a new run's id into those that steer and read it), each
    answer held to the same checks: what one call leaves behind must not make the next fail."""
    machine = _document(server, api).as_state_machine()

    class Workflows(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.url}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

    run_state_machine_as_test(
        Workflows,
        settings=settings(
            max_examples=WORKFLOWS,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_the_document_links_each_new_id_to_the_operations_that_take_it(api: Api) -> None:
    paths: dict[str, Any] = api.get("/openapi.json").json()["paths"]

    def takers(name: str) -> set[str]:
        return {
            op["operationId"]
            for operations in paths.values()
            for op in operations.values()
            if any(p["name"] == name for p in op.get("parameters", []))
        }

    site_links = paths["/api/v1/sites"]["post"]["responses"]["201"]["links"]
    run_links = paths["/api/v1/automation/run_now"]["post"]["responses"]["202"]["links"]
    assert set(site_links) == takers("site_id")
    assert set(run_links) == takers("run_id")
    assert len(site_links) >= 15  # today 19: every listing, the config, runs, estimates...
    assert len(run_links) >= 8
    for links, name in ((site_links, "site_id"), (run_links, "run_id")):
        for link in links.values():
            assert list(link["parameters"].values()) == [f"$response.body#/{name}"]


def test_a_method_a_path_lacks_is_a_405_naming_every_method_it_has(
    server: RunningServer, api: Api
) -> None:
    paths: dict[str, Any] = api.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        documented = {method.upper() for method in operations}
        concrete = path.replace("{", "").replace("}", "")  # any value names the route
        for method in sorted(METHODS - documented):
            answer = httpx.request(method, server.url + concrete, headers=api.http.headers)
            assert answer.status_code == 405, (method, path, answer.status_code)
            assert answer.json()["error"]["code"] == "method_not_allowed"
            allowed = {m.strip() for m in answer.headers["allow"].split(",")} - {"HEAD"}
            assert allowed == documented, (method, path, answer.headers["allow"])
