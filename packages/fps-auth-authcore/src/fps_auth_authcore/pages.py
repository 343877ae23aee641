"""The sign-in page in Jupyverse, and JupyterLab's request headers translated for authcore.

The page is authcore's own (:class:`authcore.web.page.LoginPage`, the one ``authcore serve`` shows):
``GET /login`` (the form, or who is signed in), ``POST /login`` and ``POST /logout`` (plain form posts
with a CSRF token), its stylesheet under ``/_authcore/static``. A successful sign-in starts the
cookie session and redirects to ``/``, which Jupyverse sends on to ``/lab``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from authcore.web.asgi import to_response, web_request
from authcore.web.core import WebCore
from authcore.web.http import WebRequest, WebResponse
from authcore.web.page import STATIC_PATH, LoginPage, content_security_policy, template

__all__ = ["JupyterLabHeaders", "login_page_router"]

#: The pages' security headers (those of ``authcore serve``); a response's own CSP wins.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": content_security_policy(),
}

_Scope = MutableMapping[str, Any]
_ASGIApp = Callable[[_Scope, Callable[[], Awaitable[Any]], Callable[[_Scope], Awaitable[None]]], Awaitable[None]]


def _endpoint(handler: Callable[[WebRequest], WebResponse]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        # The form handlers log in through the provider, which may block: a worker thread.
        answer = await run_in_threadpool(handler, web_request(request))
        for name, value in SECURITY_HEADERS.items():
            answer.headers.setdefault(name, value)
        return to_response(answer)

    endpoint.__doc__ = handler.__doc__
    return endpoint


def login_page_router(core: WebCore, title: str = "Sign in to Jupyverse") -> APIRouter:
    """``GET /login``, ``POST /login``, ``POST /logout`` and the page's stylesheet."""
    page = LoginPage(core, title=title, development=False)
    stylesheet = template("static/login.css")
    router = APIRouter()
    for method, path, handler in (("GET", "/login", page.show), ("POST", "/login", page.login)):
        router.add_api_route(path, _endpoint(handler), methods=[method], include_in_schema=False)
    router.add_api_route("/logout", _endpoint(page.logout), methods=["POST"], include_in_schema=False)

    async def css() -> Response:
        """The page's stylesheet."""
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    router.add_api_route(f"{STATIC_PATH}/login.css", css, methods=["GET"], include_in_schema=False)
    return router


class JupyterLabHeaders:
    """ASGI middleware: JupyterLab's request headers, read the way authcore expects them.

    * ``X-XSRFToken`` is read as ``X-CSRF-Token`` (when that is absent): JupyterLab echoes the
      script-readable ``_xsrf`` cookie in it on every unsafe request, and the plugin names
      authcore's CSRF cookie ``_xsrf``, so the session-bound CSRF check applies unchanged.
    * ``Authorization: token …`` is dropped: JupyterLab sends Jupyter Server's token (from its page
      config) on every call, and authcore would refuse it as a malformed bearer token. Without it
      the cookie session authenticates the call, CSRF check included: nothing is let through that
      the cookies alone would not let through. ``Authorization: Bearer …`` is kept.
    """

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: _Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[_Scope], Awaitable[None]]
    ) -> None:
        """Handle one ASGI connection."""
        if scope["type"] in ("http", "websocket"):
            original: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
            headers = [
                (name, value)
                for name, value in original
                if not (name.lower() == b"authorization" and value[:6].lower() == b"token ")
            ]
            if not any(name.lower() == b"x-csrf-token" for name, _value in headers):
                xsrf = [value for name, value in headers if name.lower() == b"x-xsrftoken"]
                if len(xsrf) == 1:
                    headers.append((b"x-csrf-token", xsrf[0]))
            if headers != original:
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
