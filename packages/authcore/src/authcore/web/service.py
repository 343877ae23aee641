"""The standalone auth service behind ``authcore serve``: the router, a login page, health.

:func:`create_app` builds the FastAPI application:

* the auth router of :class:`~authcore.web.fastapi.FastAPIAuth` (cookie sessions on, so the
  login page and SSO callbacks keep the session in ``HttpOnly`` cookies);
* ``GET /``: the login page (provider choice, login and password, an SSO button per provider
  with the single sign-on capability), or who is signed in, with a sign-out button.
  ``POST /login`` and ``POST /logout`` are plain form posts (CSRF double submit), so the page
  works without JavaScript. A failed login says "invalid login or password", whatever the reason;
* ``GET /healthz`` (the process answers) and ``GET /readyz`` (every provider is healthy);
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

import contextlib
import html
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError, ConfigError, InvalidCredentials
from ..manager import AuthManager
from ..models import VerifiedToken
from .common import (
    CSRF_FIELD,
    BadRequest,
    LoginBody,
    Throttle,
    WebSettings,
    csrf_for_session,
    csrf_matches,
    error_response,
    expected_csrf,
    is_loopback,
    new_csrf_token,
    safe_next,
)
from .fastapi import FastAPIAuth, _read_body
from .logfilter import install_log_redaction

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

#: Where the page's stylesheet is served.
STATIC_PATH = "/_authcore/static"
#: Printed on stderr (and shown on the page) when the development default runs.
DEVELOPMENT_BANNER = (
    "DEVELOPMENT MODE: no --config given, so the dummy provider is enabled: any login is accepted and "
    "the password names the permissions (e.g. 'read,write'). Listening on loopback only. Never expose this."
)

_ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[MutableMapping[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The pages' CSP: nothing but our stylesheet and images; forms post (and redirect) to us only.

    *form_targets*: further origins a form may be redirected to (the identity provider's
    end-session endpoint after the sign-out form).
    """
    form_action = " ".join(("'self'", *form_targets))
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


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


def _template(name: str) -> str:
    return resources.files("authcore.web").joinpath(name).read_text(encoding="utf-8")


def development_manager(state_dir: str | os.PathLike[str] | None = None) -> AuthManager:
    """The development default: one dummy provider called ``dummy``."""
    return AuthManager.from_config({"providers": [{"name": "dummy", "type": "dummy"}]}, state_dir=state_dir)


class _Page:
    """The login page: rendering and its form handlers."""

    def __init__(self, auth: FastAPIAuth, *, title: str, development: bool) -> None:
        self.auth = auth
        self.title = title
        self.development = development
        self.layout = Template(_template("templates/login.html"))

    def render(
        self,
        *,
        csrf: str,
        user: VerifiedToken | None,
        error: str = "",
        status: str = "",
        login: str = "",
        provider: str = "",
    ) -> str:
        esc = html.escape
        banner = f'<p class="banner">{esc(DEVELOPMENT_BANNER)}</p>' if self.development else ""
        if user is not None:
            permissions = ", ".join(sorted(user.permissions)) or "(none)"
            body = (
                '<p>You are signed in.</p><dl id="identity">'
                f'<dt>Login</dt><dd id="login-name">{esc(user.login)}</dd>'
                f"<dt>Provider</dt><dd>{esc(user.provider)}</dd>"
                f'<dt>Permissions</dt><dd id="permissions">{esc(permissions)}</dd></dl>'
                '<form method="post" action="/logout">'
                f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(csrf)}">'
                '<button type="submit" class="secondary">Sign out</button></form>'
            )
        else:
            body = self._login_form(csrf, login, provider)
        return self.layout.substitute(
            title=esc(self.title),
            static=STATIC_PATH,
            banner=banner,
            status=esc(status),
            error=esc(error),
            body=body,
        )

    def _login_form(self, csrf: str, login: str, chosen: str) -> str:
        esc = html.escape
        config = self.auth.manager.public_config()
        password_providers = [p["name"] for p in config["providers"] if "password" in p.get("credentials", ())]
        parts = []
        if password_providers:
            options = "".join(
                f'<option value="{esc(n)}"{" selected" if n == chosen else ""}>{esc(n)}</option>'
                for n in password_providers
            )
            parts.append(
                '<form method="post" action="/login" id="login-form">'
                f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(csrf)}">'
                f'<label for="provider">Sign in with</label><select id="provider" name="provider">{options}</select>'
                '<label for="login">Login</label>'
                f'<input id="login" name="login" autocomplete="username" required value="{esc(login)}">'
                '<label for="password">Password</label>'
                '<input id="password" name="password" type="password" autocomplete="current-password" required>'
                '<button type="submit">Sign in</button></form>'
            )
        sso = self.auth.sso_providers()
        if sso:
            links = "".join(
                f'<a class="button" href="{esc(self.auth.settings.path(f"/auth/sso/{n}/login"))}?next=/">'
                f"Sign in with {esc(n)} (single sign-on)</a> "
                for n in sso
            )
            parts.append(f'<div class="sso">{links}</div>')
        if not parts:
            parts.append("<p>No provider accepts a sign-in from this page.</p>")
        return "".join(parts)

    # ----------------------------------------------------------------- handlers

    async def _user(self, request: Request, response_cookies: list[Any]) -> VerifiedToken | None:
        """The signed-in user from the cookies; an expired access token is refreshed (sliding)."""
        manager = self.auth.manager
        cookies = self.auth.settings.cookies
        access = request.cookies.get(cookies.access)
        if access:
            try:
                return await manager.averify(access)
            except AuthError:
                pass
        refresh = request.cookies.get(cookies.refresh)
        if refresh:
            try:
                result = await manager.arefresh(refresh)
                user = await manager.averify(result.access_token)
            except AuthError:
                return None
            response_cookies.append(result)
            return user
        return None

    def _page(
        self, request: Request, status_code: int = 200, *, session_token: str | None = None, **kwargs: Any
    ) -> HTMLResponse:
        """A page; its forms carry the CSRF token of *session_token*'s session, else the sign-in one."""
        fresh = False
        if session_token is not None:
            csrf = csrf_for_session(session_token)
        else:
            # Before sign-in there is no session to bind to: the plain double-submit cookie.
            csrf = request.cookies.get(self.auth.settings.cookies.csrf) or ""
            fresh = not csrf or len(csrf) > 128 or not csrf.isascii()
            if fresh:
                csrf = new_csrf_token()
        response = HTMLResponse(self.render(csrf=csrf, **kwargs), status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        if fresh:
            cookies = self.auth.settings.cookies
            response.set_cookie(
                cookies.csrf,
                csrf,
                httponly=False,
                secure=self.auth.settings.cookie_secure(request.url.hostname),
                samesite=cookies.samesite,
                path=cookies.path,
            )
        return response

    async def _sign_out_targets(self, request: Request, user: VerifiedToken | None) -> tuple[str, ...]:
        """Origins the sign-out form may be redirected to: the identity provider of an SSO user."""
        if user is None:
            return ()
        try:
            url = await self.auth.sso_logout_url(user, self._signed_out_url(request))
        except AuthError:
            return ()
        if not url:
            return ()
        parts = urlsplit(url)
        return (f"{parts.scheme}://{parts.netloc}",) if parts.scheme in ("http", "https") and parts.netloc else ()

    @staticmethod
    def _signed_out_url(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/?signed_out=1"

    async def show(self, request: Request) -> Response:
        refreshed: list[Any] = []
        user = await self._user(request, refreshed)
        status = "You have signed out." if request.query_params.get("signed_out") and user is None else ""
        targets = await self._sign_out_targets(request, user)
        if not refreshed:
            session = request.cookies.get(self.auth.settings.cookies.access) if user is not None else None
            response = self._page(request, user=user, status=status, session_token=session)
        else:
            placeholder = HTMLResponse("", headers={"Cache-Control": "no-store"})
            csrf = self.auth.set_session_cookies(placeholder, request, refreshed[0])
            response = HTMLResponse(self.render(csrf=csrf, user=user), headers={"Cache-Control": "no-store"})
            for name, value in placeholder.raw_headers:
                if name == b"set-cookie":
                    response.raw_headers.append((name, value))
        if targets:
            response.headers["Content-Security-Policy"] = content_security_policy(targets)
        return response

    async def _form(self, request: Request) -> dict[str, str]:
        raw = await _read_body(request)
        try:
            text = raw.decode("utf-8")
            parsed = parse_qs(text, keep_blank_values=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("malformed form") from None
        return {key: values[0] for key, values in parsed.items() if values}

    def _csrf_ok(self, request: Request, form: dict[str, str], *, signed_in: bool) -> bool:
        """The form's CSRF field: bound to the session (sign-out), or the double submit (sign-in)."""
        cookies = self.auth.settings.cookies
        if signed_in:
            expected = expected_csrf(request.cookies, cookies)
        else:
            expected = request.cookies.get(cookies.csrf)
        return csrf_matches(expected, form.get(CSRF_FIELD))

    async def login(self, request: Request) -> Response:
        try:
            form = await self._form(request)
        except AuthError as exc:
            return self._page(request, exc.status_code, user=None, error="The form could not be read.")
        login, provider = form.get("login", ""), form.get("provider", "")
        if not self._csrf_ok(request, form, signed_in=False):
            return self._page(
                request, 403, user=None, error="The form expired; please try again.", login=login, provider=provider
            )
        try:
            body = LoginBody(plugin=provider or "-", login=login or None, password=form.get("password") or None)
            result = await self.auth.login(body, request.client.host if request.client else None)
        except AuthError as exc:
            status, payload, _headers = error_response(exc)
            if isinstance(exc, InvalidCredentials) or status == 400:
                message = "Invalid login or password."
            else:
                message = str(payload["detail"]).capitalize() + "."
            return self._page(request, status, user=None, error=message, login=login, provider=provider)
        except ValueError:  # the LoginBody shape (over-long fields): same answer as a wrong password
            return self._page(request, 401, user=None, error="Invalid login or password.", provider=provider)
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        self.auth.set_session_cookies(response, request, result)
        return response

    async def logout(self, request: Request) -> Response:
        try:
            form = await self._form(request)
        except AuthError:
            form = {}
        if not self._csrf_ok(request, form, signed_in=True):
            return self._page(request, 403, user=None, error="The form expired; please try again.")
        target = "/?signed_out=1"
        # Also when the access cookie has expired: the refresh cookie ends the session then
        # (checking the access cookie alone left the server-side session running).
        user = await self.auth.end_cookie_session(request)
        if user is not None:
            with contextlib.suppress(AuthError):  # no single sign-out: clear the cookies all the same
                target = await self.auth.sso_logout_url(user, self._signed_out_url(request)) or target
        response = RedirectResponse(target, status_code=303)
        self.auth.clear_session_cookies(response, request)
        return response


def create_app(
    manager: AuthManager,
    settings: WebSettings | None = None,
    *,
    development: bool = False,
    title: str = "Sign in",
    close_manager: bool = False,
) -> FastAPI:
    """The standalone service as a FastAPI application (see the module docstring).

    Default settings: cookie sessions on and throttling on (10 failures per login, 100 per
    address, per 5 minutes). ``close_manager`` closes *manager* at shutdown.
    """
    if settings is None:
        settings = WebSettings(cookie_auth=True, throttle=Throttle())
    auth = FastAPIAuth(manager, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_manager:
            manager.close()

    app = FastAPI(title="authcore", lifespan=lifespan, docs_url=None, redoc_url=None)
    auth.install(app)
    app.state.authcore = auth
    page = _Page(auth, title=title, development=development)
    stylesheet = _template("static/login.css")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> Response:
        """The login page, or who is signed in."""
        return await page.show(request)

    @app.post("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        """The login form's target."""
        return await page.login(request)

    @app.post("/logout", include_in_schema=False)
    async def logout_form(request: Request) -> Response:
        """The sign-out button's target."""
        return await page.logout(request)

    @app.get(f"{STATIC_PATH}/login.css", include_in_schema=False)
    async def css() -> Response:
        """The page's stylesheet."""
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """Readiness: every enabled provider reports healthy (503 otherwise)."""
        health = await run_in_threadpool(manager.health)
        ready = bool(health) and all(h.ok for h in health.values())
        body = {"ready": ready, "providers": {name: {"ok": h.ok} for name, h in health.items()}}
        return JSONResponse(body, status_code=200 if ready else 503)

    app.add_middleware(AccessLog)
    return app


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

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
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
    app = create_app(manager, settings, development=development, close_manager=True)
    build_server(app, host=host, port=port, log_level=log_level).run()
