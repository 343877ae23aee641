"""Django adapter: the route table as URL patterns, ``login_required``, and an authentication backend.

::

    # urls.py
    from authcore import AuthManager
    from authcore.web.django import DjangoAuth

    auth = DjangoAuth(AuthManager.from_file("authcore.yml"))   # reads its web: section
    urlpatterns = [*auth.urlpatterns, path("queue", auth.login_required(["queue:read"])(queue))]

    # settings.py: an existing site signs users in through any authcore provider
    AUTHENTICATION_BACKENDS = ["authcore.web.django.AuthcoreBackend"]

Every endpoint is a row of :data:`~authcore.web.routes.ROUTES` run by
:class:`~authcore.web.core.WebCore`; the cookie session is the core's (``HttpOnly`` cookies, CSRF
bound to the session), so the auth views are exempt from Django's own CSRF middleware. CORS
headers are added to the auth routes (host views: the site's own CORS setup).
``pip install 'authcore[django]>=0.2'``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from django.conf import settings as django_settings  # type: ignore[import-untyped,unused-ignore]
from django.contrib.auth import get_user_model  # type: ignore[import-untyped,unused-ignore]
from django.contrib.auth.backends import BaseBackend  # type: ignore[import-untyped,unused-ignore]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped,unused-ignore]
from django.urls import URLPattern, path  # type: ignore[import-untyped,unused-ignore]
from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped,unused-ignore]

from .. import permissions as _permissions
from ..errors import AuthError
from ..manager import AuthManager
from ..models import VerifiedToken
from .common import LoginBody
from .core import WebCore
from .http import MAX_BODY_BYTES, WebRequest, WebResponse, check_declared_length
from .routes import Route
from .settings import WebSettings, settings_from_config

__all__ = ["DjangoAuth", "AuthcoreBackend"]

View = Callable[..., HttpResponse]


def _web_request(request: HttpRequest, params: Mapping[str, str]) -> WebRequest:
    """A Django request as a :class:`WebRequest` (the body read when asked for, at most 64 KiB + 1)."""
    meta = request.META
    host = meta.get("HTTP_HOST") or f"{meta.get('SERVER_NAME', '')}:{meta.get('SERVER_PORT', '')}"

    def read_body() -> bytes:
        check_declared_length(meta.get("CONTENT_LENGTH") or None)
        body: bytes = request.read(MAX_BODY_BYTES + 1)
        return body

    return WebRequest(
        method=request.method or "GET",
        path=request.path,
        headers={name.lower(): [value] for name, value in request.headers.items()},
        cookies=request.COOKIES,
        query=request.GET,  # a QueryDict: lowball's routes read repeated parameters (getlist)
        client=meta.get("REMOTE_ADDR"),
        scheme=request.scheme or "http",
        host=host,
        hostname=host,  # is_loopback() reads host:port and [v6]:port
        params=dict(params),
        body_reader=read_body,
    )


def _to_response(answer: WebResponse) -> HttpResponse:
    response = HttpResponse(answer.body_bytes(), status=answer.status, content_type=answer.media_type)
    for name, value in answer.headers.items():
        response[name] = value
    for c in answer.cookies:
        if c.value is None:
            response.delete_cookie(c.name, path=c.path, domain=c.domain, samesite=c.samesite)
        else:
            response.set_cookie(c.name, c.value, max_age=c.max_age, **c.attributes())
    return response


class DjangoAuth:
    """authcore for a Django site: :attr:`urlpatterns`, :meth:`login_required`, the backend's manager.

    Configured by ``manager.config.web``; ``settings`` replaces it, keyword arguments override
    single fields. The last one made is the one :class:`AuthcoreBackend` logs in through.
    """

    #: The instance :class:`AuthcoreBackend` uses.
    current: ClassVar[DjangoAuth | None] = None

    def __init__(self, manager: AuthManager, settings: WebSettings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = settings_from_config(manager.config.web, **overrides)
        elif overrides:
            raise TypeError("give settings or keyword overrides, not both")
        self.manager = manager
        self.settings = settings
        self.core = WebCore(manager, settings)
        DjangoAuth.current = self

    @property
    def urlpatterns(self) -> list[URLPattern]:
        """One pattern per path of the table; each dispatches on the method (405 for others)."""
        by_path: dict[str, dict[str, Route]] = {}
        for route in self.core.routes:
            django_path = route.flask_path(self.settings.prefix).lstrip("/").replace("<", "<str:")
            by_path.setdefault(django_path, {})[route.method] = route
        # Django takes the first pattern whose path matches, whatever the method: a path with a
        # fixed segment (.../invitations) must come before one with a parameter in its place.
        ordered = sorted(by_path.items(), key=lambda item: [part.startswith("<") for part in item[0].split("/")])
        return [path(p, self._view(routes), name=f"authcore_{i}") for i, (p, routes) in enumerate(ordered)]

    def _view(self, routes: Mapping[str, Route]) -> View:
        core = self.core

        def view(request: HttpRequest, **params: str) -> HttpResponse:
            origin = request.headers.get("Origin")
            answer = core.preflight(request.method or "", origin, request.headers.get("Access-Control-Request-Method"))
            if answer is None:
                route = routes.get(request.method or "")
                if route is None:
                    answer = WebResponse(status=405, headers={"Allow": ", ".join(routes)})
                else:
                    answer = core.handle(route, _web_request(request, params))
                answer.headers.update(core.cors_headers(origin))
            return _to_response(answer)

        exempt: View = csrf_exempt(view)  # the core checks CSRF: JSON-only logins, session-bound tokens
        return exempt

    def authenticate(self, request: HttpRequest) -> VerifiedToken:
        """The verified caller: bearer header, else the cookie session (CSRF on unsafe methods)."""
        return self.core.caller(_web_request(request, {}))

    def login_required(
        self, permissions: Mapping[str, Iterable[str]] | Iterable[str] | str | None = None
    ) -> Callable[[View], View]:
        """Decorator: the view runs only for a verified caller holding every one of *permissions*
        (401 / 403 in the one error body otherwise); the caller is ``request.authcore_user``."""
        required = _permissions.normalize(permissions)

        def decorate(view: View) -> View:
            @functools.wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                try:
                    user = self.authenticate(request)
                    if required:
                        _permissions.require(user.permissions, required)
                except AuthError as exc:
                    return _to_response(WebResponse.error(exc))
                request.authcore_user = user  # type: ignore[attr-defined,unused-ignore]
                return view(request, *args, **kwargs)

            return wrapper

        return decorate


class AuthcoreBackend(BaseBackend):  # type: ignore[misc,unused-ignore]
    """A ``django.contrib.auth`` backend: ``authenticate(request, username=..., password=...)`` logs in
    through an authcore provider (``provider=`` or the first one that takes passwords), with the web
    layer's throttling, and returns the Django user of that login (created on first sign-in).

    Which Django user: a login of the instance named by the Django setting ``AUTHCORE_PROVIDER``
    is the site's own username (``alice``); a login of any other instance is qualified by it
    (``alice@ldap``), so one directory's ``admin`` is never another's. An existing staff or
    superuser account is never signed in through this backend unless ``AUTHCORE_SIGN_IN_STAFF``
    is true: a site's administrators keep signing in as they did.

    The authcore session is ended at once: the site's own session (``django.contrib.sessions``)
    is the sign-in from then on. A refused login is ``None``, as Django expects.
    """

    def authenticate(  # type: ignore[override,unused-ignore]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        provider: str | None = None,
        **_other: Any,
    ) -> Any:
        """The Django user of a successful login, else ``None``."""
        auth = DjangoAuth.current
        if auth is None or not username or not password:
            return None
        if provider is None:
            config = auth.manager.public_config()["providers"]
            provider = next((p["name"] for p in config if "password" in p.get("credentials", ())), None)
        try:
            body = LoginBody(plugin=provider or "-", login=username, password=password)
            result = auth.core.login(body, request.META.get("REMOTE_ADDR") if request is not None else None)
        except (AuthError, ValueError):
            return None
        auth.manager.logout(result.access_token)
        return _django_user(result.identity.login, result.identity.provider)

    def get_user(self, user_id: Any) -> Any:
        """The user of a Django session."""
        return get_user_model().objects.filter(pk=user_id).first()


def _django_user(login: str, instance: str) -> Any:
    """The Django user for *login* of provider *instance* (see :class:`AuthcoreBackend`), or ``None``."""
    username = login if instance == getattr(django_settings, "AUTHCORE_PROVIDER", None) else f"{login}@{instance}"
    model = get_user_model()
    if len(username) > model._meta.get_field(model.USERNAME_FIELD).max_length:
        return None
    user, _created = model.objects.get_or_create(**{model.USERNAME_FIELD: username})
    if (user.is_staff or user.is_superuser) and not getattr(django_settings, "AUTHCORE_SIGN_IN_STAFF", False):
        return None
    return user
