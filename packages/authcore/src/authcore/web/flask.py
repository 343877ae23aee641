"""Flask adapter: an extension, a ``login_required`` decorator, the auth blueprint, cookie sessions.

::

    from flask import Flask
    from authcore import AuthManager
    from authcore.web.flask import FlaskAuth

    app = Flask(__name__)
    app.secret_key = ...                     # signs the session cookie
    auth = FlaskAuth(AuthManager.from_file("authcore.yml"), app, prefix="/mxcube/api/v0.1")

    @app.get("/queue")
    @auth.login_required(["queue:read"])
    def queue(): return {"user": auth.current_user.login}

Cookie sessions follow MXCuBE: after ``POST /auth/login`` the tokens are kept in Flask's
signed, ``HttpOnly`` session cookie, ``session.permanent`` is set and
``PERMANENT_SESSION_LIFETIME`` is the idle lifetime, pushed back on every authenticated
request and by ``GET|POST /auth/refresh_session`` (the front-end calls it every few
seconds while the tab is open). The idle limit is also checked server-side from a
timestamp inside the signed cookie (a stolen cookie does not live forever), and the
absolute lifetime is the core's ``sessions.max_lifetime``: an expired access token is
refreshed through the core, which refuses once the session is too old.

Unsafe methods authenticated by the cookie need the CSRF token (returned by the login as
``csrf_token``) in the ``X-CSRF-Token`` header. Bearer tokens work as well, without CSRF.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, cast, overload

from flask import Blueprint, Flask, Response, g, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface

from .. import permissions as _permissions
from ..errors import AuthError, Forbidden, InvalidCredentials, InvalidToken, TokenExpired
from ..manager import AuthManager
from ..models import LoginResult, VerifiedToken
from . import users as _users
from .common import (
    CSRF_HEADER,
    MAX_BODY_BYTES,
    SAFE_METHODS,
    NotAuthenticated,
    PayloadTooLarge,
    RefreshBody,
    WebSettings,
    bearer_token,
    csrf_matches,
    error_response,
    login_payload,
    me_payload,
    new_csrf_token,
    parse_json,
    parse_login,
    query_token_refused,
    single_header,
)

__all__ = ["FlaskAuth", "SESSION_KEY"]

F = TypeVar("F", bound=Callable[..., Any])

#: Key of authcore's data in the Flask session.
SESSION_KEY = "authcore"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, ``Secure`` unless the request came to a loopback host."""

    def __init__(self, auth: FlaskAuth) -> None:
        self._auth = auth

    def get_cookie_secure(self, app: Flask) -> bool:
        """``Secure`` per request (see :meth:`WebSettings.cookie_secure`)."""
        return self._auth.settings.cookie_secure(request.host)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(exc: AuthError) -> Response:
    status, body, headers = error_response(exc)
    return _json(body, status, headers)


def _read_body() -> bytes:
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    return data


class FlaskAuth:
    """authcore for a Flask application.

    ``settings`` (:class:`~authcore.web.common.WebSettings`) or keyword overrides of its fields
    configure the prefix, throttling and so on. ``cookie_sessions`` (default on) keeps logins in
    the Flask session; ``idle_timeout`` (seconds, default the core's ``sessions.idle_timeout``)
    becomes ``PERMANENT_SESSION_LIFETIME``.
    """

    def __init__(
        self,
        manager: AuthManager,
        app: Flask | None = None,
        settings: WebSettings | None = None,
        *,
        cookie_sessions: bool = True,
        idle_timeout: float | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            settings = WebSettings(**overrides)
        elif overrides:
            raise TypeError("give settings or keyword overrides, not both")
        self.manager = manager
        self.settings = settings
        self.cookie_sessions = cookie_sessions
        self.idle_timeout = float(idle_timeout if idle_timeout is not None else manager.config.sessions.idle_timeout)
        self.blueprint = self._build_blueprint()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the blueprint, the error handler and the session settings on *app*."""
        if self.cookie_sessions and not app.secret_key:
            raise RuntimeError("FlaskAuth cookie sessions need app.secret_key (it signs the session cookie)")
        app.extensions["authcore"] = self
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=self.idle_timeout)
        app.config["SESSION_REFRESH_EACH_REQUEST"] = True
        app.config["SESSION_COOKIE_HTTPONLY"] = True
        app.config["SESSION_COOKIE_SAMESITE"] = self.settings.cookies.samesite.capitalize()
        app.session_interface = _SessionInterface(self)
        app.register_blueprint(self.blueprint)
        app.register_error_handler(AuthError, _error)

    # ----------------------------------------------------------------- authentication

    @property
    def current_user(self) -> VerifiedToken:
        """The caller verified by :meth:`login_required` for this request."""
        user = g.get("authcore_user")
        if user is None:
            raise NotAuthenticated()
        return cast(VerifiedToken, user)

    def authenticate(self) -> VerifiedToken:
        """Verify the caller of the current request: bearer header, else the session cookie.

        The ``query_token`` parameter counts only on a websocket handshake (``Upgrade: websocket``,
        as flask-sock serves them); on any other request it is refused.
        """
        token = bearer_token(single_header(request.headers.getlist("Authorization")))
        name = self.settings.query_token
        if token is None and name is not None and request.args.get(name):
            if request.headers.get("Upgrade", "").lower() != "websocket":
                raise query_token_refused(name)
            token = bearer_token("Bearer " + request.args[name])
        if token is not None:
            return self.manager.verify(token)
        if not self.cookie_sessions:
            raise NotAuthenticated()
        return self._session_user(check_csrf=request.method not in SAFE_METHODS)

    def _session_data(self) -> dict[str, Any]:
        data = session.get(SESSION_KEY)
        if not isinstance(data, dict) or not all(k in data for k in ("a", "r", "s", "c")):
            raise NotAuthenticated()
        if not isinstance(data["s"], int | float) or time.time() - data["s"] > self.idle_timeout:
            session.pop(SESSION_KEY, None)
            raise TokenExpired("session expired")
        return data

    def _session_user(self, *, check_csrf: bool, refresh_early: bool = False) -> VerifiedToken:
        data = self._session_data()
        if check_csrf and not csrf_matches(data["c"], request.headers.get(CSRF_HEADER)):
            raise Forbidden("CSRF token missing or wrong")
        try:
            user = self.manager.verify(data["a"])
            if refresh_early and time.time() > (user.issued_at + user.expires_at) / 2:
                raise TokenExpired()
        except TokenExpired:
            try:
                result = self.manager.refresh(data["r"])  # the core enforces the absolute lifetime
            except AuthError:
                session.pop(SESSION_KEY, None)
                raise
            data = {**data, "a": result.access_token, "r": result.refresh_token}
            user = self.manager.verify(result.access_token)
        except InvalidToken:
            session.pop(SESSION_KEY, None)
            raise
        data["s"] = time.time()
        session[SESSION_KEY] = data
        session.permanent = True
        session.modified = True
        return user

    def _start_session(self, result: LoginResult) -> str:
        # The CSRF token lives inside the signed session cookie, next to the tokens: bound to the
        # session, so a CSRF value planted from a sibling subdomain matches no session of ours.
        csrf = new_csrf_token()
        session[SESSION_KEY] = {"a": result.access_token, "r": result.refresh_token, "s": time.time(), "c": csrf}
        session.permanent = True
        return csrf

    @overload
    def login_required(self, permissions: F) -> F: ...

    @overload
    def login_required(
        self, permissions: Mapping[str, Iterable[str]] | Iterable[str] | str | None = None
    ) -> Callable[[F], F]: ...

    def login_required(self, permissions: Any = None) -> Any:
        """Decorator: the view runs only for a verified caller holding every one of *permissions*.

        401 (with ``WWW-Authenticate``) without a valid token or session, 403 without the
        permissions. Usable bare (``@auth.login_required``) or called (``@auth.login_required(["read"])``).
        The caller is :attr:`current_user` inside the view.
        """
        if callable(permissions) and not isinstance(permissions, str | Mapping | list | tuple):
            return self.login_required(None)(permissions)
        required = _permissions.normalize(permissions)

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                user = self.authenticate()
                if required:
                    _permissions.require(user.permissions, required)
                g.authcore_user = user
                return view(*args, **kwargs)

            return cast(F, wrapper)

        return decorate

    # ----------------------------------------------------------------- blueprint

    def _login(self) -> Response:
        body = parse_login(_read_body(), request.content_type, self.manager.providers)
        address = request.remote_addr
        throttle = self.settings.throttle
        if throttle is not None:
            throttle.check(body.login, address)
        try:
            result = self.manager.login(body.plugin, **body.credentials())
        except InvalidCredentials:
            if throttle is not None:
                throttle.failure(body.login, address)
            raise
        if throttle is not None:
            # The lock of the account the provider returned holds too (see FastAPIAuth.login).
            refused = throttle.refusal_after_login(body.login, result.identity.login)
            if refused is not None:
                self.manager.logout(result.access_token)
                raise refused
        payload = login_payload(result)
        if self.cookie_sessions:
            payload["csrf_token"] = self._start_session(result)
        return _json(payload)

    def _refresh(self) -> Response:
        raw = _read_body()
        if raw.strip():
            result = self.manager.refresh(parse_json(raw, RefreshBody).refresh_token)
            return _json(login_payload(result))
        if not self.cookie_sessions:
            raise InvalidToken("refresh token required")
        data = self._session_data()
        if not csrf_matches(data["c"], request.headers.get(CSRF_HEADER)):
            raise Forbidden("CSRF token missing or wrong")
        try:
            result = self.manager.refresh(data["r"])
        except AuthError:
            session.pop(SESSION_KEY, None)
            raise
        payload = login_payload(result)
        payload["csrf_token"] = self._start_session(result)
        return _json(payload)

    def _refresh_session(self) -> Response:
        user = self._session_user(check_csrf=request.method not in SAFE_METHODS, refresh_early=True)
        now = time.time()
        return _json(
            {"login": user.login, "idle_timeout": self.idle_timeout, "expires_at": int(now + self.idle_timeout)}
        )

    def _logout(self) -> Response:
        token = bearer_token(single_header(request.headers.getlist("Authorization")))
        if token is None and self.cookie_sessions:
            data = self._session_data()
            if not csrf_matches(data["c"], request.headers.get(CSRF_HEADER)):
                raise Forbidden("CSRF token missing or wrong")
            session.pop(SESSION_KEY, None)
            try:
                self.manager.logout(data["a"])
            except AuthError:
                # The access token expires (access_ttl) long before the session: end the
                # session through its refresh token instead of answering 401 and leaving it alive.
                self.manager.logout(self.manager.refresh(data["r"]).access_token)
            return Response(status=204)
        if token is None:
            raise NotAuthenticated()
        self.manager.logout(token)
        return Response(status=204)

    def _users(self, operation: str, provider: str, login: str | None = None) -> Response:
        body = None
        if request.method in {"POST", "PATCH", "PUT", "DELETE"}:
            raw = _read_body()
            body = parse_json(raw) if raw.strip() else {}
        status, payload = _users.run_operation(
            self.manager, operation, provider, login=login, body=body, query=request.args.to_dict()
        )
        return Response(status=status) if payload is None else _json(payload, status)

    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("authcore", __name__)
        path = self.settings.path
        me = self.login_required()
        admin_permission = self.settings.admin_permission

        def users(operation: str) -> Callable[..., Response]:
            def view(provider: str, login: str | None = None) -> Response:
                _users.require_admin(self.current_user, provider, admin_permission)
                return self._users(operation, provider, login)

            view.__name__ = f"users_{operation}"
            view.__doc__ = f"User management: {operation}."
            return me(view)

        bp.add_url_rule(path("/auth/login"), "login", self._login, methods=["POST"])
        bp.add_url_rule(path("/auth/config"), "config", lambda: _json(self.manager.public_config()))
        bp.add_url_rule(path("/auth/refresh"), "refresh", self._refresh, methods=["POST"])
        bp.add_url_rule(
            path("/auth/refresh_session"), "refresh_session", self._refresh_session, methods=["GET", "POST"]
        )
        bp.add_url_rule(path("/auth/logout"), "logout", self._logout, methods=["POST"])
        bp.add_url_rule(path("/auth/me"), "me", me(lambda: _json(me_payload(self.current_user))))
        bp.add_url_rule(
            path("/auth/me"),
            "self_update",
            me(lambda: self._users("self_update", self.current_user.provider, self.current_user.login)),
            methods=["PATCH"],
        )
        bp.add_url_rule(
            path("/auth/register/<provider>"),
            "register",
            lambda provider: self._users("register", provider),
            methods=["POST"],
        )
        for method, suffix, operation, _status in _users.ADMIN_ROUTES:
            rule = path("/auth/users/<provider>" + suffix.replace("{login}", "<login>"))
            bp.add_url_rule(rule, f"users_{operation}", users(operation), methods=[method])
        bp.add_url_rule("/.well-known/jwks.json", "jwks", lambda: _json(self.manager.jwks()))
        return bp
