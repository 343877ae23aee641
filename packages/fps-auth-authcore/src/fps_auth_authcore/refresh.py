"""Sliding cookie sessions for JupyterLab: an expired access cookie is renewed on the way in.

authcore's FastAPI dependencies cannot set cookies on the host's response, so there an expired
access cookie is a 401 and a browser client is expected to call ``/auth/refresh_session``.
JupyterLab's front end knows nothing of it; it polls ``GET /api/kernels``, ``/api/sessions``, …
every few seconds. This ASGI middleware renews the session before such a request reaches its
route: when the access cookie has expired (or is gone) and a refresh cookie is there, the session
is refreshed through authcore (which enforces the idle and absolute lifetimes), the request goes
on with the new cookies, and the response sets them.

Only safe ``GET``/``HEAD`` requests renew: an unsafe request carries the old session's CSRF token,
and a websocket handshake cannot set cookies, so a browser would keep a rotated refresh token.
JupyterLab sends many requests at once, and a refresh token used twice ends its session (reuse
detection), so renewals run one at a time and a renewal's result is handed to every request
that arrives with the same old refresh cookie for :data:`RECENT` seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import HTTPConnection

from authcore.errors import AuthError, TokenExpired
from authcore.web.asgi import to_response, web_request
from authcore.web.core import WebCore
from authcore.web.http import WebResponse

__all__ = ["SessionRefresh"]

#: Seconds a renewal's new cookies are handed to requests still carrying the old ones.
RECENT = 30.0
#: At most this many renewals are remembered (the oldest are dropped first).
MAX_RECENT = 10_000

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[Any]]
_Send = Callable[[_Scope], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


@dataclass(frozen=True)
class _Renewal:
    at: float
    values: dict[str, str]  # cookie name → new value, for the request going on
    headers: list[tuple[bytes, bytes]]  # the Set-Cookie headers, for the browser


class SessionRefresh:
    """ASGI middleware renewing an expired cookie session on safe requests (see the module docstring)."""

    def __init__(self, app: _ASGIApp, core: WebCore) -> None:
        self.app = app
        self.core = core
        self._lock = anyio.Lock()
        self._recent: dict[str, _Renewal] = {}

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        """Handle one ASGI connection."""
        renewal = await self._renewal(scope) if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") else None
        if renewal is None:
            await self.app(scope, receive, send)
            return
        cookies = {**HTTPConnection(scope).cookies, **renewal.values}
        header = "; ".join(f"{name}={value}" for name, value in cookies.items()).encode("latin-1")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"cookie"]
        scope = {**scope, "headers": [*headers, (b"cookie", header)]}

        async def send_with_cookies(message: _Scope) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *renewal.headers]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _renewal(self, scope: _Scope) -> _Renewal | None:
        names = self.core.settings.cookies
        cookies = HTTPConnection(scope).cookies
        refresh = cookies.get(names.refresh)
        if not refresh or not self.core.settings.cookie_auth:
            return None
        access = cookies.get(names.access)
        if access:
            try:
                await self.core.manager.averify(access)
                return None  # fresh: nothing to do
            except TokenExpired:
                pass
            except AuthError:
                return None  # revoked, forged, …: the route answers 401 as usual
        key = hashlib.sha256(refresh.encode("utf-8", "replace")).hexdigest()
        async with self._lock:
            now = time.monotonic()
            recent = self._recent.get(key)
            if recent is not None and now - recent.at < RECENT:
                return recent
            answer = WebResponse()
            try:
                # The core refreshes (rotation, idle and absolute lifetimes), then keeps the new
                # tokens as the session, exactly as a login or /auth/refresh_session would.
                result = await self.core.manager.arefresh(refresh)
            except AuthError:
                return None  # ended, reused or past its lifetime: the route answers 401
            self.core.sessions.start(web_request(HTTPConnection(scope)), answer, result)
            renewal = _Renewal(
                now,
                {c.name: c.value for c in answer.cookies if c.value is not None},
                [(k, v) for k, v in to_response(answer).raw_headers if k == b"set-cookie"],
            )
            self._remember(key, renewal)
            return renewal

    def _remember(self, key: str, renewal: _Renewal) -> None:
        self._recent = {k: r for k, r in self._recent.items() if renewal.at - r.at < RECENT}
        if len(self._recent) >= MAX_RECENT:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = renewal
