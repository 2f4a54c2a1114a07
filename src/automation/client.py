"""A typed client of the service's HTTP API: what the ``automation runs`` command uses.

One method per operation it needs, named after the operation, each returning the answer's
JSON. A refused request raises ``ApiError`` with the contract's error code; an unreachable
service raises ``ServiceUnreachable``. ``tests/e2e/test_runs_cli.py`` holds every path and
method here against the OpenAPI document, so the client cannot drift from the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson

JSON = dict[str, Any]
AUTOMATION = "/api/v1/automation"


class ApiError(Exception):
    """The service refused the request: its status, error code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class ServiceUnreachable(Exception):
    """No answer from the service at the URL."""


class Client:
    """The service at ``url``, acting as the bearer of ``token``."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **params: Any) -> JSON:
        try:
            answer = self._http.request(method, path, params=params or None)
        except httpx.TransportError as error:
            raise ServiceUnreachable(f"{self._http.base_url}: {error}") from error
        if answer.status_code >= 400:
            self._raise(answer)
        return _json(answer)

    # Sites and runs.
    def list_sites(self) -> JSON:
        return self._call("GET", "/api/v1/sites")

    def history(self, site_id: str) -> JSON:
        return self._call("GET", f"{AUTOMATION}/history", site_id=site_id)

    def current_run(self, site_id: str) -> JSON:
        return self._call("GET", f"{AUTOMATION}/current_run", site_id=site_id)

    def processing(self, site_id: str, run_id: str) -> JSON:
        return self._call("GET", f"{AUTOMATION}/current_processing", site_id=site_id, run_id=run_id)

    def run_state(self, run_id: str) -> JSON:
        return self._call("GET", f"{AUTOMATION}/runs/{run_id}/state")

    def run_now(self, site_id: str) -> JSON:
        return self._call("POST", f"{AUTOMATION}/run_now", site_id=site_id)

    def pause(self, run_id: str) -> JSON:
        return self._call("POST", f"{AUTOMATION}/pause", run_id=run_id)

    def resume(self, run_id: str) -> JSON:
        return self._call("POST", f"{AUTOMATION}/resume", run_id=run_id)

    def cancel(self, run_id: str) -> JSON:
        return self._call("POST", f"{AUTOMATION}/cancel", run_id=run_id)

    def logs(self, run_id: str, lines: int) -> JSON:
        return self._call("GET", f"{AUTOMATION}/logs", run_id=run_id, lines=lines)

    def stream(self, run_id: str, after_version: int = 0) -> Iterator[JSON]:
        """The run's events as they happen, until its terminal event ends the stream."""
        path = f"{AUTOMATION}/runs/{run_id}/stream"
        try:
            with self._http.stream(
                "GET", path, params={"after_version": after_version}, timeout=None
            ) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    self._raise(answer)
                for line in answer.iter_lines():
                    if line.startswith("data:"):
                        yield orjson.loads(line[5:].strip())
        except httpx.TransportError as error:
            raise ServiceUnreachable(f"{self._http.base_url}: {error}") from error

    def _raise(self, answer: httpx.Response) -> None:
        found = _json(answer).get("error")
        error: JSON = found if isinstance(found, dict) else {}
        raise ApiError(
            answer.status_code,
            str(error.get("code", f"http_{answer.status_code}")),
            str(error.get("message", answer.reason_phrase)),
            error.get("details"),
        )


def _json(answer: httpx.Response) -> JSON:
    try:
        body = orjson.loads(answer.content) if answer.content else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {"results": body}
