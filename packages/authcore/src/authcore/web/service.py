"""The standalone auth service behind ``authcore serve``: the router, a login page, health.

:func:`create_app` builds the FastAPI application:

* the auth router of :class:`~authcore.web.fastapi.FastAPIAuth` (cookie sessions on, so the
  login page and SSO callbacks keep the session in ``HttpOnly`` cookies);
* ``GET /``: the login page (provider choice, login and password, an SSO button per provider
  with the single sign-on capability), or who is signed in, with a sign-out button.
  ``POST /login`` and ``POST /logout`` are plain form posts (CSRF double submit), so the page
  works without JavaScript. A failed login says "invalid login or password", whatever the reason;
* ``GET /healthz`` (the process answers) and ``GET /readyz`` (every provider is healthy, as
  ``GET /auth/health``); the page itself is :mod:`authcore.web.page`;
* one JSON access-log line per request on the ``authcore.access`` logger: method, path (never
  the query string), status, duration, client address. No header, token, password or cookie
  is ever logged. Security headers (CSP, no framing, no referrer, no caching of pages) on
  every response. The CSP's ``form-action`` is ``'self'``, plus, on the signed-in page of a
  single sign-on user, the identity provider's origin (the sign-out form is redirected there,
  and browsers apply ``form-action`` to a form's redirects);
* :func:`serve` installs :class:`~authcore.web.logfilter.RedactTokens` on the server's loggers.

:func:`development_manager` is the development default: the dummy provider only, which is
why :func:`serve` (and the CLI) refuse a non-loopback host for it.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from ..errors import ConfigError
from ..manager import AuthManager
from .asgi import to_response, web_request
from .fastapi import FastAPIAuth
from .http import WebRequest, WebResponse
from .logfilter import install_log_redaction
from .page import DEVELOPMENT_BANNER, STATIC_PATH, LoginPage, content_security_policy, template
from .settings import WebSettings, is_loopback, settings_from_config

__all__ = [
    "build_server",
    "create_app",
    "content_security_policy",
    "development_manager",
    "serve",
    "AccessLog",
    "DEVELOPMENT_BANNER",
    "STATIC_PATH",
]

access_log = logging.getLogger("authcore.access")

_ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[MutableMapping[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", content_security_policy().encode()),
]


class AccessLog:
    """ASGI middleware: one structured access-log line per request, plus security headers.

    Logged: method, path (no query string: it may hold an SSO code), status, duration in ms,
    client address. Never headers, cookies, bodies or tokens.
    """

    def __init__(self, app: _ASGIApp, logger: logging.Logger = access_log) -> None:
        self.app = app
        self.logger = logger

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """Handle one ASGI connection."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _value in headers}
                # A response may set its own (stricter or wider) policy: keep it, add the rest.
                message["headers"] = headers + [h for h in _SECURITY_HEADERS if h[0] not in present]
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and not status:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            status = status or 500
            raise
        finally:
            if self.logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                record = {
                    "event": "access",
                    "method": scope.get("method", "WEBSOCKET"),
                    "path": str(scope.get("path", ""))[:512],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                }
                self.logger.info(json.dumps(record, ensure_ascii=True))


def development_manager(state_dir: str | os.PathLike[str] | None = None) -> AuthManager:
    """The development default: one dummy provider called ``dummy``."""
    return AuthManager.from_config({"providers": [{"name": "dummy", "type": "dummy"}]}, state_dir=state_dir)


def _page_endpoint(handler: Callable[[WebRequest], WebResponse]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return to_response(await run_in_threadpool(handler, web_request(request)))

    endpoint.__doc__ = handler.__doc__
    return endpoint


def create_app(
    manager: AuthManager,
    settings: WebSettings | None = None,
    *,
    development: bool = False,
    title: str = "Sign in",
    close_manager: bool = False,
    tune_collector: bool = False,
) -> FastAPI:
    """The standalone service as a FastAPI application (see the module docstring).

    Default settings: cookie sessions on and throttling on (10 failures per login, 100 per
    address, per 5 minutes). ``close_manager`` closes *manager* at shutdown; ``tune_collector``
    (:func:`serve`'s) tunes the garbage collector once the server runs (:func:`_tune_collector`).
    """
    if settings is None:
        settings = settings_from_config(manager.config.web, default_cookie_session=True, default_throttle=True)
    auth = FastAPIAuth(manager, settings)

    lifespan = _lifespan(manager, close_manager=close_manager, tune_collector=tune_collector)
    app = FastAPI(title="authcore", lifespan=lifespan, docs_url=None, redoc_url=None)
    auth.install(app)
    app.state.authcore = auth
    page = LoginPage(auth.core, title=title, development=development)
    stylesheet = template("static/login.css")

    # The page's form handlers are synchronous (the login runs the provider): in a worker thread.
    for method, path, handler in (
        ("GET", "/", page.show),
        ("POST", "/login", page.login),
        ("POST", "/login/second-factor", page.second_step),
        ("POST", "/logout", page.logout),
    ):
        app.add_api_route(path, _page_endpoint(handler), methods=[method], include_in_schema=False)

    @app.get(f"{STATIC_PATH}/login.css", include_in_schema=False)
    async def css() -> Response:
        """The page's stylesheet."""
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    health = next(route for route in auth.core.routes if route.operation == "health")

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> Response:
        """Readiness: every enabled provider reports healthy (503 otherwise); ``/auth/health`` too."""
        return to_response(await run_in_threadpool(auth.core.handle, health, web_request(request)))

    app.add_middleware(AccessLog)
    return app


def _lifespan(
    manager: AuthManager, *, close_manager: bool, tune_collector: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if tune_collector:
            _tune_collector()
        yield
        if close_manager:
            manager.close()

    return lifespan


#: ``authcore serve``'s threshold for Python's youngest generation (Python's default: 700).
YOUNG_COLLECTION_THRESHOLD: Final = 10_000


def _tune_collector() -> None:
    """Leave what startup made out of every later collection, and collect after garbage, not load.

    Requests that wait on Redis are many at once, and the objects each holds meanwhile pushed
    Python's youngest generation past its threshold of 700: collections that found nothing to
    free, promotions, and now and then a full one that walked the whole startup heap (modules,
    the app, its routes; about 40 ms on the benchmark machine). A Redis login under 8
    concurrent clients spent 25-35 us in collections, a memory-store one 3. The startup heap
    is frozen (never walked again), and the youngest generation waits for
    :data:`YOUNG_COLLECTION_THRESHOLD` objects, more than the requests in flight hold: then
    collections run about as often as the memory store's. A host that embeds the web layer
    decides this for its own process.
    """
    gc.collect()
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def _configure_access_log() -> None:
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


def build_server(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> Any:
    """The ``uvicorn.Server`` that :func:`serve` runs for *app* (built by :func:`create_app`).

    uvicorn's own access log is off (it prints query strings; ours, ``authcore.access``, does
    not), and :class:`~authcore.web.logfilter.RedactTokens` is installed on the server's loggers:
    uvicorn's error logger still logs websocket targets with their query (a query token).
    """
    import uvicorn

    trusted = app.state.authcore.manager.config.web.trusted_proxies
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level=log_level,
        server_header=False,
        # X-Forwarded-* only from the configured balancers (web.trusted_proxies), else from nobody.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) or None,
        limit_concurrency=1000,
        h11_max_incomplete_event_size=32 * 1024,
        timeout_graceful_shutdown=5,
    )
    # After uvicorn.Config has configured logging (filters survive dictConfig, but be sure).
    query_token = app.state.authcore.settings.query_token
    install_log_redaction(extra_names=(query_token,) if query_token else ())
    return uvicorn.Server(config)


def serve(
    manager: AuthManager,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: WebSettings | None = None,
    development: bool = False,
    log_level: str = "info",
) -> None:
    """Run the service with uvicorn until interrupted; closes *manager* at the end.

    In development mode a host that is not loopback is refused (:class:`ConfigError`).
    """
    if development and not is_loopback(host):
        manager.close()
        raise ConfigError(f"the development default listens on loopback only, not {host!r}; give --config")
    _configure_access_log()
    app = create_app(manager, settings, development=development, close_manager=True, tune_collector=True)
    build_server(app, host=host, port=port, log_level=log_level).run()
