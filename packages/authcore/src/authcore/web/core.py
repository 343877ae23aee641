"""The framework-neutral web core: every operation of the route table, the guards, throttled login, CORS.

An adapter builds one :class:`WebCore`, turns each framework request into a
:class:`~authcore.web.http.WebRequest`, calls :meth:`WebCore.handle` with the row of
:data:`~authcore.web.routes.ROUTES` it matched, and turns the
:class:`~authcore.web.http.WebResponse` back. Everything here is synchronous (the providers
and stores block): the FastAPI adapter runs :meth:`WebCore.handle` in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..async_api import Waits, run_as
from ..errors import (
    AuthError,
    ConfigError,
    Forbidden,
    InvalidToken,
    NotAuthenticated,
    TokenNotFound,
)
from ..manager import AuthManager
from ..models import LoginResult, VerifiedToken
from ..sessions.shared import SharedState
from . import personal_tokens, second_factor, self_service
from . import users as _users
from .common import (
    CSRF_HEADER,
    SAFE_METHODS,
    LoginBody,
    RefreshBody,
    bearer_token,
    login_payload,
    me_payload,
    parse_json,
    parse_login,
    query_token_refused,
    single_header,
)
from .http import WebRequest, WebResponse
from .login import WebLogin
from .lowball import LowballRoutes, lowball_routes
from .routes import ROUTES, Route, path_of, routes_with
from .session import CookieSessions, SessionStorage
from .settings import WebSettings
from .sso import SingleSignOnFlow

__all__ = ["WebCore", "CORS_METHODS", "CORS_HEADERS"]

#: What a CORS preflight allows.
CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_HEADERS = f"Authorization, Content-Type, {CSRF_HEADER}"

Operation = Callable[[WebRequest, VerifiedToken | None], WebResponse]

#: What an adapter makes of a :class:`WebResponse` (:meth:`WebCore.handle_on_loop`).
R = TypeVar("R")


class WebCore:
    """The auth endpoints of one manager and one :class:`WebSettings`, for any adapter."""

    def __init__(self, manager: AuthManager, settings: WebSettings, storage: SessionStorage | None = None) -> None:
        # Throttle counters, SSO claims and the SSO state key live where the sessions do: in a
        # store every instance shares (Redis) when it offers SharedState, else in this process.
        store = manager._sessions.store
        shared = store if isinstance(store, SharedState) else None
        if shared is not None and settings.throttle is not None and settings.throttle.private:
            settings = replace(settings, throttle=settings.throttle.sharing(shared))
        self.manager = manager
        self.settings = settings
        #: Log in with py-ispyb's body (throttled when configured): ``login(body, address, lifetime=None)``.
        self.login = WebLogin(manager, settings.throttle)
        self.sessions = CookieSessions(manager, settings, storage)
        try:
            self.routes: tuple[Route, ...] = routes_with(settings.paths) if settings.paths else ROUTES
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.sso = SingleSignOnFlow(self.sessions, self.path, shared)
        lowball = settings.lowball
        self.lowball = LowballRoutes(manager, lowball, self.login) if lowball is not None else None
        if lowball is not None:
            self.routes += lowball_routes(lowball.prefix)
        self._operations: dict[str, Operation] = {route.operation: self._bind(route) for route in self.routes}

    def path(self, operation: str, **params: str) -> str:
        """The full path of *operation* (after ``web.paths`` and the prefix), parameters filled in."""
        return path_of(self.routes, operation, self.settings.prefix, **params)

    def _bind(self, route: Route) -> Operation:
        method: Operation | None = getattr(self, "_" + route.operation, None)
        if method is not None:
            return method
        # Operations kept in modules of their own (their rows' docstrings are there).
        kept = self_service.OPERATIONS.get(route.operation) or second_factor.OPERATIONS.get(route.operation)
        if kept is not None:
            return lambda request, caller: kept(self, request, caller)
        if self.lowball is not None and route.operation.startswith("lowball_"):
            return self.lowball.operation(route.operation)
        # The user-management rows: users_<operation of authcore.web.users>; the guard has run.
        operation = route.operation.removeprefix("users_")
        return lambda request, _caller: self.users(
            request, operation, request.params["provider"], request.params.get("login")
        )

    # ----------------------------------------------------------------- dispatch

    def handle(self, route: Route, request: WebRequest) -> WebResponse:
        """Run *route*'s guard and operation; every :class:`AuthError` becomes the one error body."""
        try:
            caller = None
            if route.guard in ("user", "admin"):
                caller = self.caller(request)
            if route.guard == "admin":
                assert caller is not None
                _users.require_admin(caller, request.params["provider"], self.settings.admin_permission)
            return self._operations[route.operation](request, caller)
        except AuthError as exc:
            refused = WebResponse.error(exc)
            if route.operation.startswith("lowball_"):
                refused.json["message"] = refused.json["detail"]  # lowball's error body
            return refused

    async def handle_on_loop(self, route: Route, request: WebRequest, respond: Callable[[WebResponse], R]) -> R:
        """:meth:`handle` for a request :meth:`waits` puts on the event loop (``"loop"``), its
        answer made the adapter's response by *respond*: a refresh with its token in the body
        awaits the rotation there (:meth:`AuthManager.arefresh`), a login without cookie
        sessions its store calls (:meth:`WebLogin.awaited`, which makes its response while
        Redis works on them, so that less is left for once the reply is in), anything else runs
        bridged (:func:`~authcore.loop_bridge.run_bridged`)."""
        try:
            if route.operation == "login" and not self.settings.cookie_auth:
                body = self._login_body(request)
                return await self.login.awaited(
                    body, request.client, answer=lambda result: respond(_login_answer(result))
                )
            if route.operation == "refresh" and (token := self._refresh_token_in(request)) is not None:
                answer = _login_answer(await self.manager.arefresh(token))
            else:
                answer = await run_as("loop", lambda: self.handle(route, request))
        except AuthError as exc:
            answer = WebResponse.error(exc)
        return respond(answer)

    def waits(self, route: Route, request: WebRequest) -> Waits:
        """Where an async adapter runs *request*: ``"none"`` in-line, ``"loop"`` bridged on its
        event loop, ``"thread"`` in a worker thread (:data:`~authcore.async_api.Waits`).

        In-line (no thread hop, which costs more than a whole dummy login) only where nothing
        waits: the public config, the JWKS, and a login or a refresh whose provider(s), store
        and plugins do no I/O (:meth:`AuthManager.login_waits`, :meth:`AuthManager.refresh_waits`);
        on the loop where the Redis store alone waits. The body must have been preloaded.
        """
        if route.operation in ("config", "jwks"):
            return "none"
        if route.operation not in ("login", "refresh") or request.body_reader is not None:
            return "thread"
        if route.operation == "refresh":
            return self._refresh_waits(request)
        try:
            body = self._login_body(request)
        except AuthError:
            return "none"  # refused without any I/O
        return self.manager.login_waits(body.plugin)

    def _refresh_waits(self, request: WebRequest) -> Waits:
        """A refresh's :meth:`waits`: a refresh token in the body goes to :meth:`AuthManager.arefresh`
        on the loop wherever it can await the rotation there, since it sends a session's upstream
        step to a thread itself when the session's provider waits; a cookie session's refresh runs
        :meth:`handle`, so it goes where the slowest provider's refresh would have to."""
        waits = self.manager.refresh_waits()
        if waits != "thread" or not self.manager.rotation_on_loop():
            return waits
        try:
            token = self._refresh_token_in(request)
        except AuthError:
            return "none"  # refused without any I/O
        return "loop" if token is not None else waits

    def _login_body(self, request: WebRequest) -> LoginBody:
        body = request.memo.get("login")
        if body is None:
            body = request.memo["login"] = parse_login(
                request.read_body(), request.header("content-type"), self.manager.providers
            )
        return body

    # ----------------------------------------------------------------- who is calling

    def token(self, authorization: list[str] | tuple[str, ...], query_value: str | None, websocket: bool) -> str | None:
        """The bearer token, else (websockets only) the ``query_token`` parameter's; ``None`` for neither.

        Malformed or repeated ``Authorization`` headers, and the query parameter on a plain HTTP
        request, raise :class:`InvalidToken`.
        """
        token = bearer_token(single_header(authorization))
        if token is None and query_value:
            if not websocket:
                raise query_token_refused(self.settings.query_token or "")
            token = bearer_token("Bearer " + query_value)
        return token

    def request_token(self, request: WebRequest) -> str | None:
        """:meth:`token` of a :class:`WebRequest`."""
        name = self.settings.query_token
        query_value = request.query.get(name) if name else None
        return self.token(list(request.header_list("authorization")), query_value, request.websocket)

    def caller(self, request: WebRequest, response: WebResponse | None = None) -> VerifiedToken:
        """The verified caller: bearer token, else the cookie session (CSRF on unsafe methods)."""
        token = self.request_token(request)
        if token is not None:
            return self.manager.verify(token)
        if not self.settings.cookie_auth:
            raise NotAuthenticated()
        # A browser sends cookies on a cross-site websocket handshake and no preflight or CSRF
        # header guards it, so a cookie-authenticated upgrade must come from this site.
        if request.websocket and not self.same_origin(request.header("origin"), request.header("host")):
            raise Forbidden("cross-origin websocket refused")
        unsafe = request.method not in SAFE_METHODS
        return self.sessions.user(request, response, check_csrf=unsafe, slide=self.sessions.storage.slides)

    def same_origin(self, origin: str | None, host: str | None) -> bool:
        """Whether a cookie-authenticated websocket comes from this site (or a CORS origin).

        Browsers send cookies on cross-site websocket handshakes and no preflight guards them.
        """
        if origin is None or origin in self.settings.cors_origins:
            return True
        return urlsplit(origin).netloc.lower() == (host or "").lower()

    # ----------------------------------------------------------------- login, refresh, logout

    def _login(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        result = self.login(self._login_body(request), request.client)
        response = _login_answer(result)
        if self.settings.cookie_auth:
            response.json["csrf_token"] = self.sessions.start(request, response, result)
        return response

    @staticmethod
    def _refresh_token_in(request: WebRequest) -> str | None:
        """The refresh token a refresh's body carries, or ``None`` for an empty body (a cookie session's)."""
        if "refresh_token" not in request.memo:
            raw = request.read_body()
            request.memo["refresh_token"] = parse_json(raw, RefreshBody).refresh_token if raw.strip() else None
        token: str | None = request.memo["refresh_token"]
        return token

    def _refresh(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        token = self._refresh_token_in(request)
        if token is not None:
            return _login_answer(self.manager.refresh(token))
        if not self.settings.cookie_auth:
            raise InvalidToken("refresh token required")
        state = self.sessions.load(request)
        self.sessions.check_csrf(request, state)
        response = WebResponse()
        try:
            result = self.manager.refresh(state.refresh)
        except AuthError as exc:
            refused = WebResponse.error(exc)
            self.sessions.storage.clear(request, refused)
            return refused
        response.json = login_payload(result)
        response.json["csrf_token"] = self.sessions.start(request, response, result)
        return response

    def _refresh_session(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        """MXCuBE's keep-alive: push the cookie session's idle clock back, refreshing tokens early."""
        if not self.settings.cookie_auth:
            raise NotAuthenticated()
        response = WebResponse()
        sessions = self.sessions
        unsafe = request.method not in SAFE_METHODS
        # Written back even where authenticating does not slide: this response can carry cookies.
        user = sessions.user(request, response, check_csrf=unsafe, slide=True, refresh_early=True)
        idle = sessions.idle_timeout
        response.json = {"login": user.login, "idle_timeout": idle, "expires_at": int(user.issued_at + idle)}
        # An early refresh may have rotated the CSRF token (cookie storage derives it): the SPA's
        # next unsafe call needs the current one.
        response.json["csrf_token"] = request.memo["csrf"]
        return response

    def _logout(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        token = self.request_token(request)
        response = WebResponse(status=204)
        if token is None and self.settings.cookie_auth:
            state = self.sessions.load(request)
            self.sessions.check_csrf(request, state)
            user = self.sessions.end(state)
            if user is None:
                response = WebResponse.error(InvalidToken("session ended"))
            self.sessions.storage.clear(request, response)
            return response
        if token is None:
            raise NotAuthenticated()
        self.manager.logout(token)
        if self.settings.cookie_auth:
            self.sessions.storage.clear(request, response)
        return response

    # ----------------------------------------------------------------- the rest

    def _config(self, _request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        data = self.manager.public_config()
        data["sso"] = [{"provider": n, "login": self.path("sso_login", provider=n)} for n in self.sso.providers()]
        # py-ispyb's shape, which its front-ends read: {"plugins": [{"name", "config"}]}, where
        # config holds a py-ispyb plugin's config_export keys (authcore.compat.pyispyb).
        data["plugins"] = [{"name": p["name"], "config": p.get("config", {})} for p in data["providers"]]
        return WebResponse(json=data)

    def _me(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        return WebResponse(json=me_payload(caller))

    def _jwks(self, _request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        return WebResponse(json=self.manager.jwks(), headers={"Cache-Control": "public, max-age=300"})

    def _health(self, _request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        """Readiness: every enabled provider reports healthy (503 otherwise); no details."""
        health = self.manager.health()
        ready = bool(health) and all(h.ok for h in health.values())
        body = {"ready": ready, "providers": {name: {"ok": h.ok} for name, h in health.items()}}
        return WebResponse(status=200 if ready else 503, json=body)

    def _sso_login(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        return self.sso.start(request, request.params["provider"])

    def _sso_callback(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        return self.sso.callback(request, request.params["provider"])

    def _self_update(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        return self.users(request, "self_update", caller.provider, caller.login)

    def _sessions(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        """The caller's live sessions (theirs on this provider instance), ``current`` marking this one."""
        assert caller is not None
        records = self.manager.sessions_of(caller.login, provider=caller.provider)
        return WebResponse(json={"sessions": [_users.session_payload(r, caller.session_id) for r in records]})

    def _sessions_end(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        """Sign out everywhere: every session of the caller's ends, this one included."""
        assert caller is not None
        self.manager.end_sessions_of(caller.login, provider=caller.provider)
        response = WebResponse(status=204)
        if self.settings.cookie_auth:
            self.sessions.storage.clear(request, response)
        return response

    def _session_end(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        """End one of the caller's own sessions (another device); 404 for any other id."""
        assert caller is not None
        record = self.manager.session_record(request.params["session_id"])
        mine = record is not None and (record.login, record.provider) == (caller.login, caller.provider)
        if record is None or not mine or not record.active(time.time()):
            raise TokenNotFound("no such session")
        self.manager.end_session(record.session_id)
        return WebResponse(status=204)

    def _personal_tokens(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        return WebResponse(json=personal_tokens.list_tokens(self.manager, caller))

    def _personal_token_create(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        body = parse_json(request.read_body(), personal_tokens.NewPersonalToken)
        created = personal_tokens.create_token(self.manager, caller, body, self.manager.config.tokens)
        return WebResponse(status=201, json=created, headers={"Cache-Control": "no-store"})

    def _personal_token_revoke(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        personal_tokens.revoke_token(self.manager, caller, request.params["token_id"])
        return WebResponse(status=204)

    def _register(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        return self.users(request, "register", request.params["provider"])

    def users(self, request: WebRequest, operation: str, provider: str, login: str | None = None) -> WebResponse:
        """Run one user-management operation (:func:`authcore.web.users.run_operation`)."""
        body: Mapping[str, Any] | None = None
        if request.method in {"POST", "PATCH", "PUT", "DELETE"}:
            raw = request.read_body()
            body = parse_json(raw) if raw.strip() else {}
        status, payload = _users.run_operation(
            self.manager, operation, provider, login=login, body=body, query=request.query
        )
        return WebResponse(status=status, json=payload)

    # ----------------------------------------------------------------- CORS

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        """Headers that let *origin* read the answer: none when CORS is off, only ``Vary`` when not allowed."""
        origins = self.settings.cors_origins
        if not origins:
            return {}
        if not origin or (origin not in origins and "*" not in origins):
            # The answer still depends on the Origin: a cache must not hand this one to an allowed origin.
            return {"Vary": "Origin"}
        headers = {"Access-Control-Allow-Origin": origin if origin in origins else "*", "Vary": "Origin"}
        if self.settings.cors_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def preflight(self, method: str, origin: str | None, requested_method: str | None) -> WebResponse | None:
        """The answer to a CORS preflight, or ``None`` if the request is not one (or CORS is off)."""
        if method != "OPTIONS" or not origin or not requested_method or not self.settings.cors_origins:
            return None
        headers = self.cors_headers(origin)
        if "Access-Control-Allow-Origin" not in headers:
            return WebResponse(status=400, json={"detail": "origin not allowed", "code": "cors_refused"})
        headers.update({"Access-Control-Allow-Methods": CORS_METHODS, "Access-Control-Allow-Headers": CORS_HEADERS})
        headers["Access-Control-Max-Age"] = "600"
        return WebResponse(status=200, headers=headers)


def _login_answer(result: LoginResult) -> WebResponse:
    """A login's or a refresh's answer: py-ispyb's body with the session's tokens (:func:`login_payload`)."""
    return WebResponse(json=login_payload(result))
