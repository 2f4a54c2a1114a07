"""Routes whose JSON bodies are parsed by orjson rather than the standard library's json.

The standard parser accepts what no store can hold and fails on what it should refuse: it
turns ``"\\ud800"`` into a lone surrogate (a 500 wherever the text is encoded, such as a
keyword's id), raises RecursionError on arrays nested a hundred thousand deep, and
UnicodeDecodeError on bytes that are not UTF-8, which FastAPI answers with a bare
``http_error``. orjson refuses all three (and infinities such as ``1e400``) with a
JSONDecodeError, which FastAPI reports as ``json_invalid``: 400 ``invalid_request`` naming
``body``, like any other malformed body. This is FastAPI's documented way to change how a
body is read (a custom ``Request`` from a custom ``APIRoute``); routers with bodies use it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

_UNREAD = object()


class OrjsonRequest(Request):
    _parsed: Any = _UNREAD

    async def json(self) -> Any:
        if self._parsed is _UNREAD:
            self._parsed = orjson.loads(await self.body())
        return self._parsed


class JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler  # nothing to parse: no extra hop

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson
