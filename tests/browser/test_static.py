"""The console's and the docs' files over plain HTTP: public, cached with ETags, and the
console page confined to this host by its Content-Security-Policy."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer


@pytest.mark.parametrize(
    ("path", "cache_control"),
    [
        ("/console/app.js", "no-cache"),
        ("/console/style.css", "no-cache"),
        ("/docs-static/swagger-ui-bundle.js", "public, max-age=86400"),
        ("/docs-static/redoc.standalone.js", "public, max-age=86400"),
    ],
)
def test_static_files_have_cache_headers_and_etags(
    server: RunningServer, path: str, cache_control: str
) -> None:
    first = httpx.get(server.url + path)  # no token: these are public
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == cache_control
    etag = first.headers["etag"]
    again = httpx.get(server.url + path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_the_console_page_is_public_and_the_data_is_not(server: RunningServer) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    for path in ("/docs", "/redoc"):
        docs = httpx.get(server.url + path)
        assert docs.status_code == 200
        assert "http://" not in docs.text
        assert "https://" not in docs.text  # FastAPI's own pages name a CDN here
        assert "default-src 'self'" in docs.headers["content-security-policy"]
    assert httpx.get(server.url + "/api/v1/sites").status_code == 401
