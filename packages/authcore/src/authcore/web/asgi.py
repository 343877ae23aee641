"""The Starlette half of the FastAPI adapter: requests in, responses out, CORS as ASGI middleware.

Shared by :mod:`authcore.web.fastapi` and the standalone service (:mod:`authcore.web.service`).
"""

from __future__ import annotations

from typing import Any

import anyio.from_thread
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import PayloadTooLarge
from .core import WebCore
from .http import MAX_BODY_BYTES, WebRequest, WebResponse, check_declared_length

__all__ = ["CorsMiddleware", "read_body", "to_response", "web_request"]

# A websocket handshake's URL scheme as the page's: what SSO redirect URIs and cookies go by.
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


async def read_body(request: Request) -> bytes:
    """The body, refused (413) past :data:`MAX_BODY_BYTES` before more is read."""
    check_declared_length(request.headers.get("content-length"))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def web_request(connection: HTTPConnection) -> WebRequest:
    """*connection* as a :class:`WebRequest`; the body is read (from the worker thread) when asked for."""
    scope = connection.scope
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope["headers"]:  # the raw list: cheaper than Headers.items()
        headers.setdefault(raw_name.decode("latin-1").lower(), []).append(raw_value.decode("latin-1"))
    host = headers.get("host", [""])[0]
    if not host and scope.get("server"):
        host = f"{scope['server'][0]}:{scope['server'][1]}"
    reader = None
    if isinstance(connection, Request):
        request = connection
        reader = lambda: anyio.from_thread.run(read_body, request)  # noqa: E731
    return WebRequest(
        method=scope.get("method", "GET"),
        path=scope["path"],
        headers=headers,
        cookies=connection.cookies,
        query=connection.query_params,
        client=connection.client.host if connection.client else None,
        scheme=_SCHEMES.get(scope.get("scheme") or "http", "http"),
        host=host,
        hostname=host,  # is_loopback() reads host:port and [v6]:port
        websocket=scope["type"] == "websocket",
        params=scope.get("path_params", {}),
        body_reader=reader,
    )


def to_response(answer: WebResponse) -> Response:
    """A :class:`WebResponse` as a Starlette response."""
    response = Response(answer.body_bytes(), status_code=answer.status, media_type=answer.media_type)
    for name, value in answer.headers.items():
        response.headers[name] = value
    for c in answer.cookies:
        if c.value is None:
            response.delete_cookie(c.name, **c.attributes())
        else:
            response.set_cookie(c.name, c.value, max_age=c.max_age, **c.attributes())
    return response


class CorsMiddleware:
    """ASGI middleware applying the core's CORS policy (:meth:`WebCore.preflight`, :meth:`WebCore.cors_headers`)."""

    def __init__(self, app: ASGIApp, core: WebCore) -> None:
        self.app, self.core = app, core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        preflight = self.core.preflight(scope["method"], origin, headers.get("access-control-request-method"))
        if preflight is not None:
            await to_response(preflight)(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in self.core.cors_headers(origin).items()]

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)
