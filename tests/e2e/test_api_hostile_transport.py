"""Hostile bodies and transports, on both backends: bytes that are not JSON or not UTF-8,
JSON nested 100,000 deep, wrong content types, 20 MB bodies declared or chunked, bodies
that come slowly, and text that is odd but valid (kept exactly as sent).

Every operation of the OpenAPI document that takes a body gets each malformed body; the
caller gets 400 ``invalid_request`` naming ``body`` and nothing changes, a stranger gets
401 whatever the body, and gets it before the server has read the body at all.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Api, RunningServer
from tests.support.hostile import operations

NESTED = 100_000
MALFORMED: list[tuple[str, bytes, str | None]] = [
    ("not UTF-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("a lone surrogate", b'{"keywords": ["\\ud800"], "name": "\\udfff"}', "application/json"),
    ("arrays nested deep", b"[" * NESTED + b"]" * NESTED, "application/json"),
    ("objects nested deep", b'{"a":' * NESTED + b"1" + b"}" * NESTED, "application/json"),
    ("a byte-order mark", b'\xef\xbb\xbf{"name": "x"}', "application/json"),
    ("cut short", b'{"name": "x', "application/json"),
    ("trailing garbage", b'{"name": "x"} {}', "application/json"),
    ("empty", b"", "application/json"),
    ("an infinity", b'{"volume": 1e400, "stage_1_batch_size": Infinity}', "application/json"),
    ("UTF-16", '{"name": "x"}'.encode("utf-16"), "application/json; charset=utf-16"),
    ("JSON as text/plain", b'{"name": "x"}', "text/plain"),
    ("a form", b"name=x&keywords=y", "application/x-www-form-urlencoded"),
    ("multipart", b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--b--", None),
    ("no content type", b'{"name": "x"}', None),
]
BIG = 20 * 1024 * 1024


def _body_operations(api: Api) -> list[tuple[str, str]]:
    document = api.get("/openapi.json").json()
    found = [(op.method, op.path) for op in operations(document) if op.body is not None]
    assert len(found) >= 3
    return found


def _state(api: Api, site: str) -> Any:
    """What a refused request must not change."""
    config = api.get("/api/v1/automation/config", site_id=site).json()
    config.pop("next_run_at", None)
    return (
        api.get("/api/v1/sites").json(),
        api.get("/api/v1/planner/keywords", site_id=site).json(),
        config,
    )


def _assert_invalid_body(answer: httpx.Response, case: object) -> None:
    assert answer.status_code == 400, (case, answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert error["code"] == "invalid_request", (case, error)
    assert error["details"]["fields"], (case, error)


def _assert_401(answer: httpx.Response, case: object) -> None:
    assert answer.status_code == 401, (case, answer.status_code, answer.text[:300])
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "not_authenticated"


def test_malformed_bodies_are_invalid_request_for_the_caller_and_401_for_a_stranger(
    server: RunningServer, api: Api
) -> None:
    site = api.site()
    before = _state(api, site)
    stranger = httpx.Client(base_url=server.url, timeout=30)
    for method, path in _body_operations(api):
        for label, body, content_type in MALFORMED:
            headers = {"content-type": content_type} if content_type else {}
            if label == "multipart":
                headers = {"content-type": "multipart/form-data; boundary=b"}
            request: dict[str, Any] = {
                "params": {"site_id": site},
                "content": body,
                "headers": headers,
            }
            case = (method, path, label)
            _assert_invalid_body(api.http.request(method, path, **request), case)
            _assert_401(stranger.request(method, path, **request), case)
    assert _state(api, site) == before


def _chunks(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("sent", ["declared", "chunked"])
def test_a_20_mb_body_is_refused_and_the_connection_kept(
    server: RunningServer, api: Api, sent: str
) -> None:
    site = api.site()
    before = _state(api, site)
    keywords = b'{"keywords": [' + b'"trail running shoes", ' * (BIG // 23) + b'"x"]}'
    assert len(keywords) > BIG
    stranger = httpx.Client(base_url=server.url, timeout=60)
    for client, check in ((api.http, _assert_invalid_body), (stranger, _assert_401)):
        content: Any = keywords if sent == "declared" else _chunks(keywords)
        answer = client.post(
            "/api/v1/planner/keywords",
            params={"site_id": site},
            content=content,
            headers={"content-type": "application/json"},
        )
        check(answer, sent)
        # The same connection answers the next request: nothing was dropped.
        assert client.get("/healthz").status_code == 200
    assert _state(api, site) == before


def _answer(sock: socket.socket) -> bytes:
    """The status line and headers of one HTTP answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        segment = sock.recv(65536)
        assert segment, data  # closed before answering
        data += segment
    return data


def _head(server: RunningServer, authorization: str, length: int) -> bytes:
    return (
        f"POST /api/v1/sites HTTP/1.1\r\nHost: test\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_slow_body_is_read_whole_and_a_stranger_is_answered_before_sending_it(
    server: RunningServer, api: Api
) -> None:
    body = b'{"name": "Slow \\u202e shoes", "timezone": "Europe/Berlin"}'
    token = api.http.headers["authorization"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(_head(server, token, len(body)))
        for byte in body:  # one byte at a time, each in a packet of its own
            sock.sendall(bytes([byte]))
            time.sleep(0.002)
        assert _answer(sock).startswith(b"HTTP/1.1 201 ")
    names = [s["name"] for s in api.get("/api/v1/sites").json()["results"]]
    assert names == ["Slow \u202e shoes"]
    # A stranger's answer comes while the server still waits for the body it declared.
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(_head(server, "Bearer atk_nobody", 10**9))
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert b"www-authenticate: bearer" in answer.lower()


ODD_BUT_VALID = [
    "\u202eevil\u202c \u2066isolated\u2069",  # bidi overrides and isolates
    "\U0001f469\u200d\U0001f52c zero\u200bwidth\ufeff",  # ZWJ emoji, zero-width, BOM
    "e\u0301\u0301\u0301 \u0645\u0631\u062d\u0628\u0627 \u4f60\u597d",  # combining, RTL, CJK
    "\ufffd\uffff\U0010ffff",  # replacement character, noncharacters
    "\U0001d54f" * 200,  # 200 astral characters (400 UTF-16 units)
]


def test_odd_but_valid_text_is_kept_exactly_as_sent(api: Api) -> None:
    for text in ODD_BUT_VALID:
        answer = api.post("/api/v1/sites", {"name": text})
        assert answer.status_code == 201, (text, answer.text)
        assert answer.json()["name"] == text
    listed = [s["name"] for s in api.get("/api/v1/sites").json()["results"]]
    assert listed == ODD_BUT_VALID
    site = api.site("Keywords")
    items = [{"keyword": text, "volume": 10**12} for text in ODD_BUT_VALID]
    assert api.keywords(site, items).status_code == 201
    stored = api.get("/api/v1/planner/keywords", site_id=site).json()["results"]
    assert [(k["keyword"], k["volume"]) for k in stored] == [(t, 10**12) for t in ODD_BUT_VALID]
