"""Request bodies over ``AUTOMATION_MAX_BODY_BYTES`` are refused (400, naming ``body``),
declared or chunked, and change nothing; bodies within it are read as sent."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from automation.bootstrap import Services
from tests.conftest import Api, RunningServer

LIMIT = 4096
KEYWORDS = "/api/v1/planner/keywords"


@pytest.fixture
def capped(services: Services) -> Iterator[RunningServer]:
    services.settings.max_body_bytes = LIMIT
    with RunningServer(services) as running:
        yield running


@pytest.fixture
def client(capped: RunningServer) -> Api:
    _, token = capped.services.app.open_account("Acme", 1_000_000)
    return Api(capped.url, token)


def _body(size: int) -> bytes:
    """A keyword import of exactly ``size`` bytes (padded with spaces, which JSON allows)."""
    body = json.dumps({"keywords": [f"keyword {i}" for i in range(size // 40)]}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def _chunks(body: bytes) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]


def _keywords(client: Api, site_id: str) -> int:
    answer = client.get(KEYWORDS, site_id=site_id, limit=1)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["count"])


def _post(client: Api, site_id: str, content: Any) -> httpx.Response:
    return client.http.post(
        KEYWORDS,
        params={"site_id": site_id},
        content=content,
        headers={"content-type": "application/json"},
    )


def _whole_answer(sock: socket.socket) -> str:
    """Headers and body of one HTTP answer (which may come in several segments)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _answer_length(data):
        segment = sock.recv(65536)
        assert segment, data  # the server closed before the whole answer
        data += segment
    return data.decode()


def _answer_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(data)


def _assert_body_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["fields"] == {"body": f"must be at most {LIMIT} bytes"}


def test_a_body_at_the_limit_is_read_whole_declared_or_chunked(client: Api) -> None:
    site_id = client.site()
    declared = _post(client, site_id, _body(LIMIT))
    assert declared.status_code == 201, declared.text
    created = declared.json()["created"]
    assert created == LIMIT // 40
    other = client.site("Other")
    chunked = _post(client, other, _chunks(_body(LIMIT)))
    assert chunked.status_code == 201, chunked.text
    assert chunked.json()["created"] == created
    assert _keywords(client, other) == created


def test_a_chunked_body_over_the_limit_is_refused_and_changes_nothing(client: Api) -> None:
    site_id = client.site()
    _assert_body_refused(_post(client, site_id, _chunks(_body(LIMIT + 1))))
    assert _keywords(client, site_id) == 0


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    capped: RunningServer, client: Api
) -> None:
    site_id = client.site()
    _assert_body_refused(_post(client, site_id, _body(LIMIT + 1)))
    # A client that declares a gigabyte and sends nothing gets its answer at once: the
    # server did not wait for the body (it would have, until the socket's timeout).
    token = client.http.headers["authorization"]
    request = (
        f"POST {KEYWORDS}?site_id={site_id} HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**9}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", capped.port), timeout=5) as sock:
        sock.sendall(request.encode())
        answer = _whole_answer(sock)
    assert answer.startswith("HTTP/1.1 400 "), answer
    assert f'"must be at most {LIMIT} bytes"' in answer
    assert _keywords(client, site_id) == 0
