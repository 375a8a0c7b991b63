"""Request size limit: oversized bodies are refused (413) before anything parses them.

Pydantic's ``max_length`` on a field only runs after the whole body was read into
memory and decoded as JSON; a client could make the server buffer and parse
megabytes first. This ASGI middleware refuses a declared ``Content-Length`` over the
limit without reading a byte of the body, and counts a streamed (chunked) body as it
arrives, stopping at the first chunk past the limit.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Default limit. The largest valid request is a suggest request with 10,000 characters
#: of text; JSON-escaped as ``\\uXXXX`` surrogate pairs (what ``json.dumps`` does to
#: emoji by default) that is ~120 KB, so the limit leaves room for it.
DEFAULT_MAX_BODY_BYTES = 128 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    An :class:`HTTPException` so that FastAPI, which reads the body inside its route
    handler, re-raises it as is (other errors there become a generic 400) and its
    exception middleware answers 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_too_large(limit))


def _too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes"


class BodySizeLimit:
    """ASGI middleware: 413 for HTTP request bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes: must be at least 1")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _reply(send, 400, "content-length: not an integer")
                return
            if length > self.max_bytes:
                await _reply(send, 413, _too_large(self.max_bytes))
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:  # read outside a route (e.g. by another middleware)
            if started:
                raise
            await _reply(send, 413, _too_large(self.max_bytes))


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
