"""Serves the console at ``/`` and Swagger UI and ReDoc at ``/docs`` and ``/redoc`` from files
installed with the service, so both work on a host that reaches no other host.

Everything here is public: the console is a page of static files that asks the API for data
with the token the user signs in with, so ``/api/v1/`` stays the only way into the data and
tenancy holds by construction. Swagger UI's and ReDoc's files come from the
``fastapi-offline`` package (pinned in pyproject.toml), never from a CDN.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).parent / "static"
DOCS_DIR = Path(str(files("fastapi_offline") / "static"))
# The page may load only what this host serves: a second guard against another host.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Swagger UI and ReDoc start from an inline script and inject styles, and ReDoc searches in a
# worker made from a blob; anything they would fetch from another host (ReDoc's attribution
# logo, Swagger UI's validator badge) is refused by the browser before it asks.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


class CachedFiles(StaticFiles):
    """StaticFiles (which already sends ETag and Last-Modified and answers 304 to a matching
    If-None-Match) with a Cache-Control header of the mount's own."""

    def __init__(self, directory: Path, cache_control: str) -> None:
        super().__init__(directory=directory)
        self.cache_control = cache_control

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = self.cache_control
        return response


def install_console(app: FastAPI) -> None:
    """Add the console and the offline docs. The app must be created with
    ``docs_url=None, redoc_url=None``, so that FastAPI's CDN-backed pages are not there."""
    # The console's own files change with each release of the service: the browser keeps
    # them but asks each time (a 304 when unchanged). The docs' files change only with the
    # pinned package, so they may be kept for a day without asking.
    app.mount("/console", CachedFiles(CONSOLE_DIR, "no-cache"), name="console")
    app.mount("/docs-static", CachedFiles(DOCS_DIR, "public, max-age=86400"), name="docs-static")
    title = app.title

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(
            CONSOLE_DIR / "index.html",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONSOLE_CSP},
        )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} - Swagger UI",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
            # The validator badge sends the document's address to a public validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url="/docs-static/redoc.standalone.js",
            redoc_favicon_url="/docs-static/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page
