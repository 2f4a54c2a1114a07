"""A cap on the size of request bodies, as a plain ASGI middleware.

A route reads its whole body before it can validate it, so without a cap one request could
fill the process's memory. A body over the cap is refused like any other bad body (400
``invalid_request``, naming ``body``; the contract's client errors are 400, 401 and 404).
A body whose ``Content-Length`` is over the cap is refused before any of it is read (the
server holds a body to its declared length). A body without one (chunked) is read here up
to the cap, and handed on only if it ends within it. Nothing is changed by a refused
request.

Not FastAPI's ``max_body_size``: it checks the declared length only when a route reads
its body, so a route that reads none (``run_now``, ``pause``, ``cancel``) would run its
command and then answer 413, and a refused request would have changed something.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from automation.api.errors import invalid_request, response_for

WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


class _ClientLeft(Exception):
    """The client went away before the end of its body: there is no one to answer."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in WITHOUT_BODY:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            try:
                body = await _read_up_to(receive, self.max_bytes)
            except _ClientLeft:
                return
            if body is not None:
                await self.app(scope, _replaying(body, receive), send)
                return
        elif declared <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        refusal = invalid_request({"body": f"must be at most {self.max_bytes} bytes"})
        await response_for(refusal)(scope, receive, send)


async def _read_up_to(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientLeft
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: a disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
