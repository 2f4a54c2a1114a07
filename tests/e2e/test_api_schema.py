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
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import Api, RunningServer

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


def test_every_answer_is_one_the_document_promises(
    server: RunningServer, api: Api, real_ids: dict[str, str]
) -> None:
    document = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    token = api.http.headers["authorization"]

    # The caller's token, given as the document's bearer scheme: valid cases carry it,
    # invalid ones may lack it or spoil it, and ``ignored_auth`` sends each again without.
    @document.auth()
    class CallersToken:
        def get(self, case: Any, context: Any) -> str:
            return token

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": data}

    excluded = [positive_data_acceptance]
    tested = 0
    for result in document.exclude(path_regex="/stream$").get_all_operations():
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
