"""How an adapter exposes authcore over HTTP: :class:`WebSettings`, read from the ``web:`` section.

:func:`settings_from_config` turns ``manager.config.web`` (:class:`~authcore.config.web.WebConfig`)
into settings; adapters call it with their constructor arguments as overrides, and
``authcore serve`` with its flags.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config.web import LowballRoutesConfig, WebConfig
from ..errors import ConfigError
from .throttle import Throttle

__all__ = ["CookieSettings", "WebSettings", "is_loopback", "settings_from_config"]


def is_loopback(host: str | None) -> bool:
    """Whether *host* (``name``, ``name:port``, ``[v6]:port``, or an address) is this machine."""
    if not host:
        return False
    name = host.strip()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name.lower() in {"localhost", "localhost.localdomain"} or name.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class CookieSettings:
    """Names and attributes of the cookies the web layer sets.

    ``secure=None`` means: ``Secure`` unless the request came to a loopback host (so that
    ``http://127.0.0.1`` works in development). Session cookies are always ``HttpOnly``;
    the CSRF cookie is readable by scripts on purpose (double submit).
    """

    access: str = "authcore_access"
    refresh: str = "authcore_refresh"
    csrf: str = "authcore_csrf"
    sso: str = "authcore_sso"
    samesite: Literal["lax", "strict"] = "lax"
    secure: bool | None = None
    path: str = "/"
    domain: str | None = None

    def secure_for(self, host: str | None) -> bool:
        """Whether cookies set for a request to *host* carry ``Secure``."""
        return self.secure if self.secure is not None else not is_loopback(host)


@dataclass(frozen=True)
class WebSettings:
    """How an adapter exposes authcore over HTTP. Every default is the safe choice.

    * ``prefix``: put in front of every auth path (``/ispyb/api/v1`` → ``/ispyb/api/v1/auth/login``).
    * ``query_token``: name of a query parameter accepted as a token on **websocket** routes
      (browsers cannot set headers on a websocket handshake); ``None`` (default) accepts none.
      A plain HTTP request carrying it is refused (401): query strings end up in access logs
      (see :class:`authcore.web.logfilter.RedactTokens`), history and ``Referer`` headers.
    * ``cookie_auth``: the cookie session: a JSON login starts one, cookie-authenticated
      requests are accepted (unsafe methods then need the CSRF token).
    * ``idle_timeout``: idle lifetime of a cookie session (``None``: ``sessions.idle_timeout``).
    * ``admin_permission``: what the user-management endpoints require: ``users:admin`` grants
      them on every provider instance, ``users:admin:<instance>`` on that instance only.
    * ``cors_origins``: origins allowed by CORS; empty (default) switches CORS off. ``"*"`` is
      refused together with ``cors_credentials``.
    * ``throttle``: a :class:`Throttle`, or ``None`` for no throttling.
    * ``public_url``: the external base URL (``https://host``) for SSO redirect URIs; default:
      taken from the request.
    * ``state_key``: the key signing SSO state cookies (random per process when ``None``).
    * ``paths``: operation → path after the prefix, for a site whose front end calls other paths
      (MXCuBE: ``{"login": "/login/", "refresh_session": "/login/refresh_session"}``); checked
      by :func:`~authcore.web.routes.routes_with`.
    * ``lowball``: lowball's ``/builtins/auth`` routes (:mod:`authcore.web.lowball`), or ``None``.
    """

    prefix: str = ""
    query_token: str | None = None
    cookie_auth: bool = False
    cookies: CookieSettings = field(default_factory=CookieSettings)
    admin_permission: str = "users:admin"
    cors_origins: tuple[str, ...] = ()
    cors_credentials: bool = False
    throttle: Throttle | None = None
    public_url: str | None = None
    state_key: bytes | None = field(default=None, repr=False)
    sso_state_ttl: float = 600.0
    idle_timeout: float | None = None
    paths: Mapping[str, str] = field(default_factory=dict)
    lowball: LowballRoutesConfig | None = None

    def __post_init__(self) -> None:
        if self.prefix and (not self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix):
            raise ConfigError("prefix must start with '/' and not end with '/' (e.g. /ispyb/api/v1)")
        if "*" in self.cors_origins and self.cors_credentials:
            raise ConfigError("CORS: '*' cannot be combined with credentials; list the origins")
        if self.query_token is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", self.query_token):
            raise ConfigError("query_token must be a parameter name")

    def cookie_secure(self, host: str | None) -> bool:
        """Whether cookies set for a request to *host* carry ``Secure``.

        With ``public_url`` its host decides, not the request's ``Host``: behind a reverse proxy
        that forwards to ``127.0.0.1`` (nginx's default ``Host: $proxy_host``) the request looks
        like loopback although the browser is on the public HTTPS site.
        """
        if self.cookies.secure is None and self.public_url is not None:
            return self.cookies.secure_for(urlsplit(self.public_url).netloc)
        return self.cookies.secure_for(host)

    def path(self, suffix: str) -> str:
        """``prefix + suffix``."""
        return f"{self.prefix}{suffix}"


_FIELDS = frozenset(f.name for f in fields(WebSettings))


def settings_from_config(
    config: WebConfig, *, default_cookie_session: bool = False, default_throttle: bool = False, **overrides: Any
) -> WebSettings:
    """:class:`WebSettings` from the ``web:`` section, *overrides* (constructor arguments, flags) winning.

    *default_cookie_session* and *default_throttle* are the adapter's defaults for what the section leaves unset
    (``authcore serve`` throttles and keeps cookie sessions; a FastAPI host app does neither).
    """
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise TypeError(f"unknown web settings: {', '.join(sorted(unknown))}")
    cookies = config.cookies
    limits = config.throttle
    throttled = limits.enabled if limits.enabled is not None else default_throttle
    secret = config.sso_state_secret
    values: dict[str, Any] = {
        "prefix": config.prefix,
        "query_token": config.query_token,
        "cookie_auth": config.cookie_session if config.cookie_session is not None else default_cookie_session,
        "cookies": CookieSettings(
            access=cookies.access,
            refresh=cookies.refresh,
            csrf=cookies.csrf,
            sso=cookies.sso,
            samesite=cookies.samesite,
            secure=cookies.secure,
            path=cookies.path,
            domain=cookies.domain,
        ),
        "admin_permission": config.admin_permission,
        "cors_origins": config.cors.origins,
        "cors_credentials": config.cors.credentials,
        "throttle": Throttle(
            max_per_login=limits.max_per_login, max_per_address=limits.max_per_address, window=limits.window
        )
        if throttled
        else None,
        "public_url": config.public_url.rstrip("/") if config.public_url else None,
        "state_key": secret.get_secret_value().encode() if secret is not None else None,
        "sso_state_ttl": config.sso_state_ttl,
        "idle_timeout": config.idle_timeout,
        "paths": dict(config.paths),
        "lowball": config.lowball if config.lowball.enabled else None,
    }
    values.update(overrides)
    return WebSettings(**values)
