"""Flask adapter: an extension, a ``login_required`` decorator, the route table as a blueprint.

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

Cookie sessions follow MXCuBE: the core's cookie session (:mod:`authcore.web.session`) lives in Flask's
signed session cookie, ``PERMANENT_SESSION_LIFETIME`` is its idle lifetime, pushed back on every authenticated
request and by ``GET|POST /auth/refresh_session``, and checked server-side too. Unsafe methods authenticated by
the cookie need the login's ``csrf_token`` in ``X-CSRF-Token``. Every endpoint is a row of
:data:`~authcore.web.routes.ROUTES` run by :class:`~authcore.web.core.WebCore`; SSO and CORS come with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar, cast, overload

from flask import Blueprint, Flask, Response, g, request, session
from flask.sessions import SecureCookieSessionInterface

from .. import permissions as _permissions
from ..errors import AuthError, NotAuthenticated
from ..manager import AuthManager
from ..models import VerifiedToken
from .core import WebCore
from .http import MAX_BODY_BYTES, WebRequest, WebResponse, check_declared_length
from .routes import Route
from .session import SessionState
from .settings import WebSettings, settings_from_config

__all__ = ["FlaskAuth", "SESSION_KEY"]

F = TypeVar("F", bound=Callable[..., Any])

#: Key of authcore's data in the Flask session.
SESSION_KEY = "authcore"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, ``Secure`` per request (:meth:`WebSettings.cookie_secure`)."""

    def __init__(self, settings: WebSettings) -> None:
        self._settings = settings

    def get_cookie_secure(self, app: Flask) -> bool:
        """Flask's hook."""
        return self._settings.cookie_secure(request.host)


class _FlaskSessionStorage:
    """The core's :class:`~authcore.web.session.SessionState` inside Flask's signed session."""

    slides = True  # Flask writes the session cookie after the view: every request may slide it

    def load(self, _request: WebRequest) -> SessionState | None:
        data = session.get(SESSION_KEY)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "arc"):
            return None
        seen = data.get("s")
        return SessionState(data["a"], data["r"], data["c"], seen if isinstance(seen, int | float) else 0.0)

    def save(self, _request: WebRequest, _response: WebResponse | None, state: SessionState) -> None:
        session[SESSION_KEY] = {"a": state.access, "r": state.refresh, "c": state.csrf, "s": state.seen}
        session.permanent = True
        session.modified = True

    def clear(self, _request: WebRequest, _response: WebResponse | None) -> None:
        session.pop(SESSION_KEY, None)


def _read_body() -> bytes:
    check_declared_length(request.content_length)
    return request.stream.read(MAX_BODY_BYTES + 1)


def _web_request() -> WebRequest:
    """The current Flask request as a :class:`WebRequest`."""
    return WebRequest(
        method=request.method,
        path=request.path,
        headers={name.lower(): request.headers.getlist(name) for name in request.headers.keys()},  # noqa: SIM118
        cookies=request.cookies,
        query=request.args,  # a MultiDict: lowball's routes read repeated parameters (getlist)
        client=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
        hostname=request.host,  # is_loopback() reads host:port and [v6]:port
        websocket=request.headers.get("Upgrade", "").lower() == "websocket",
        params={k: str(v) for k, v in (request.view_args or {}).items()},
        body_reader=_read_body,
    )


def _to_response(answer: WebResponse) -> Response:
    response = Response(answer.body_bytes(), status=answer.status, content_type=answer.media_type)
    response.headers.update(answer.headers)
    for c in answer.cookies:
        if c.value is None:
            response.delete_cookie(c.name, **c.attributes())
        else:
            response.set_cookie(c.name, c.value, max_age=c.max_age, **c.attributes())
    return response


class FlaskAuth:
    """authcore for a Flask application.

    Configured by ``manager.config.web``; ``settings`` (:class:`WebSettings`) replaces it, keyword arguments
    override single fields. ``cookie_sessions`` (default: ``settings.cookie_auth``, else ``web.cookie_session``,
    else on) keeps logins in the Flask session; ``idle_timeout`` (``web.idle_timeout``, else the session's) too.
    """

    def __init__(
        self,
        manager: AuthManager,
        app: Flask | None = None,
        settings: WebSettings | None = None,
        *,
        cookie_sessions: bool | None = None,
        idle_timeout: float | None = None,
        **overrides: Any,
    ) -> None:
        if settings is not None and overrides:
            raise TypeError("give settings or keyword overrides, not both")
        if settings is None:
            if cookie_sessions is not None:
                overrides["cookie_auth"] = cookie_sessions
            settings = settings_from_config(manager.config.web, default_cookie_session=True, **overrides)
        elif cookie_sessions is not None:  # explicit settings keep their cookie_auth unless overridden
            settings = replace(settings, cookie_auth=cookie_sessions)
        if idle_timeout is not None:
            settings = replace(settings, idle_timeout=idle_timeout)
        self.manager = manager
        self.settings = settings
        self.core = WebCore(manager, settings, _FlaskSessionStorage())
        self.cookie_sessions = settings.cookie_auth
        self.idle_timeout = self.core.sessions.idle_timeout
        self.blueprint = Blueprint("authcore", __name__)
        for route in self.core.routes:
            self.blueprint.add_url_rule(
                route.flask_path(settings.prefix), route.name, self._view(route), methods=[route.method]
            )
        if app is not None:
            self.init_app(app)

    def _view(self, route: Route) -> Callable[..., Response]:
        handle = self.core.handle

        def view(**_params: Any) -> Response:
            return _to_response(handle(route, _web_request()))

        return view

    def init_app(self, app: Flask) -> None:
        """Register the blueprint, the error handler, CORS and the session settings on *app*."""
        if self.cookie_sessions and not app.secret_key:
            raise RuntimeError("FlaskAuth cookie sessions need app.secret_key (it signs the session cookie)")
        app.extensions["authcore"] = self
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=self.idle_timeout)
        app.config["SESSION_REFRESH_EACH_REQUEST"] = True
        app.config["SESSION_COOKIE_HTTPONLY"] = True
        app.config["SESSION_COOKIE_SAMESITE"] = self.settings.cookies.samesite.capitalize()
        app.session_interface = _SessionInterface(self.settings)
        app.register_blueprint(self.blueprint)
        app.register_error_handler(AuthError, lambda exc: _to_response(WebResponse.error(exc)))
        if self.settings.cors_origins:
            app.before_request(self._preflight)
            app.after_request(self._cors)

    def _preflight(self) -> Response | None:
        headers = request.headers
        answer = self.core.preflight(
            request.method, headers.get("Origin"), headers.get("Access-Control-Request-Method")
        )
        return _to_response(answer) if answer is not None else None

    def _cors(self, response: Response) -> Response:
        cors = self.core.cors_headers(request.headers.get("Origin"))
        response.vary.update(filter(None, [cors.pop("Vary", None)]))  # added to the view's own Vary
        response.headers.update(cors)
        return response

    # ----------------------------------------------------------------- authentication

    @property
    def current_user(self) -> VerifiedToken:
        """The caller verified by :meth:`login_required` for this request."""
        user = g.get("authcore_user")
        if user is None:
            raise NotAuthenticated()
        return cast(VerifiedToken, user)

    def authenticate(self) -> VerifiedToken:
        """The caller: bearer header, the ``query_token`` parameter on a websocket handshake only
        (``Upgrade: websocket``, as flask-sock serves them), else the cookie session."""
        name = self.settings.query_token
        query_value = request.args.get(name) if name else None
        websocket = query_value is not None and request.headers.get("Upgrade", "").lower() == "websocket"
        token = self.core.token(request.headers.getlist("Authorization"), query_value, websocket)
        if token is not None:
            return self.manager.verify(token)
        if not self.cookie_sessions:
            raise NotAuthenticated()
        return self.core.caller(_web_request())

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
