"""The ``web:`` section: how the web adapters and ``authcore serve`` expose authcore over HTTP.

Host applications (``FastAPIAuth(manager)``, ``FlaskAuth(manager, app)``) and ``authcore serve``
read ``manager.config.web``; constructor arguments and ``serve``'s flags override it. Every
default is the safe choice. Field documentation is written as attribute docstrings, for
``docs/generate_config_reference.py``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ..durations import Duration

__all__ = ["WebConfig", "CookieConfig", "CorsConfig", "LowballRoutesConfig", "ThrottleConfig"]

_COOKIE_NAME = r"^[A-Za-z0-9_\-]{1,64}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)


class CookieConfig(_Section):
    """``web.cookies:``: names and attributes of the cookies the web layer sets."""

    access: str = Field(default="authcore_access", pattern=_COOKIE_NAME)
    """Name of the access-token cookie (``HttpOnly``)."""
    refresh: str = Field(default="authcore_refresh", pattern=_COOKIE_NAME)
    """Name of the refresh-token cookie (``HttpOnly``)."""
    csrf: str = Field(default="authcore_csrf", pattern=_COOKIE_NAME)
    """Name of the CSRF cookie (readable by scripts on purpose: double submit)."""
    sso: str = Field(default="authcore_sso", pattern=_COOKIE_NAME)
    """Name of the short-lived single sign-on state cookie."""
    secure: bool | None = None
    """``Secure`` attribute; unset: ``Secure`` unless the request came to a loopback host."""
    samesite: Literal["lax", "strict"] = "lax"
    """``SameSite`` attribute of the session cookies (``none`` is not offered: it invites CSRF)."""
    domain: str | None = Field(default=None, max_length=253, pattern=r"^[A-Za-z0-9.\-]+$")
    """``Domain`` attribute; unset (the default, and the safest): the cookie goes to this host only."""
    path: str = Field(default="/", pattern=r"^/[^;\s]*$")
    """``Path`` attribute of the session cookies."""


class CorsConfig(_Section):
    """``web.cors:``: cross-origin requests from browser front-ends on other origins."""

    origins: tuple[str, ...] = ()
    """Origins allowed (``https://ui.example.org``); empty (the default) switches CORS off."""
    credentials: bool = False
    """Allow credentials (cookies) on cross-origin requests; refused together with ``*``."""

    @model_validator(mode="after")
    def _no_star_with_credentials(self) -> CorsConfig:
        if "*" in self.origins and self.credentials:
            raise ValueError("'*' cannot be combined with credentials; list the origins")
        return self


class ThrottleConfig(_Section):
    """``web.throttle:``: counting failed logins per login and per client address."""

    enabled: bool | None = None
    """Throttle failed logins; unset: on for ``authcore serve``, off for host applications."""
    max_per_login: int = Field(default=10, ge=1, le=1_000_000)
    """Failures of one login (canonical form) within ``window`` before logins are refused (429)."""
    max_per_address: int = Field(default=100, ge=1, le=1_000_000)
    """Failures from one client address within ``window`` before logins are refused (429)."""
    window: Duration = 300.0
    """How long failures are counted."""

    @field_validator("window")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("window must be positive")
        return value


class LowballRoutesConfig(_Section):
    """``web.lowball:``: lowball's ``/builtins/auth`` routes (login, tokens, clients) served by authcore.

    A lowball front end or script keeps calling the routes it knows; tokens are authcore's (each
    one a session of its own, revoked like any), roles are authcore permissions.
    """

    enabled: bool = False
    """Serve the routes."""
    prefix: str = Field(default="/builtins/auth", min_length=2, max_length=256, pattern=r"^/[^\s?#]*[^/\s?#]$")
    """Where they are (not under ``web.prefix``: lowball mounts them at the application's root)."""
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    """The provider instance logins and client management go to; unset: the only enabled one."""
    default_token_life: Duration = 3600.0
    """Lifetime of a token from a login, or minted without ``token_life``."""
    max_token_life: Duration = 2592000.0
    """Longest ``token_life`` a caller may ask for (lowball's default: 30 days)."""
    admin_role: str = Field(default="admin", min_length=1, max_length=128)
    """The permission that makes a caller lowball's admin (tokens for others, every client)."""


class WebConfig(_Section):
    """``web:``: the HTTP endpoints, cookies, CORS and throttling of the web adapters and ``authcore serve``."""

    prefix: str = Field(default="", max_length=256)
    """Put in front of every auth path (``/ispyb/api/v1`` gives ``/ispyb/api/v1/auth/login``)."""
    public_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^/?#\s]+/?$")
    """The external base URL (``https://host``) for SSO redirect URIs and cookie security; default: from the request."""
    cookie_session: bool | None = None
    """Keep logins in a cookie session (JSON login sets it; unsafe methods then need the CSRF token);
    unset: on for ``authcore serve`` and Flask, off for FastAPI."""
    idle_timeout: Duration | None = None
    """Idle lifetime of a cookie session; unset: ``sessions.idle_timeout``."""
    paths: dict[str, str] = Field(default_factory=dict, max_length=32)
    """Operation → path after ``prefix`` for front ends that call other paths (MXCuBE's
    ``{login: /login/, logout: /login/signout, refresh_session: /login/refresh_session}``);
    parameters such as ``{provider}`` stay. Operations are those of the route table (docs/web.md)."""
    cookies: CookieConfig = Field(default_factory=CookieConfig)
    """Cookie names and attributes."""
    cors: CorsConfig = Field(default_factory=CorsConfig)
    """Cross-origin requests."""
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
    """Failed-login throttling."""
    query_token: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
    """Query parameter accepted as a token on websocket routes only (browsers cannot set headers
    there); unset (the default) accepts none. A plain HTTP request carrying it is refused."""
    admin_permission: str = Field(default="users:admin", min_length=1, max_length=128)
    """Permission of the user-management endpoints (``<it>:<instance>`` grants one instance)."""
    sso_state_secret: SecretStr | None = None
    """Key (at least 32 bytes) signing the single sign-on state cookie; unset: random per process
    (a restart voids pending SSO logins). Set it when several instances share SSO callbacks."""
    sso_state_ttl: Duration = 600.0
    """How long a started single sign-on may take."""
    trusted_proxies: list[str] = Field(default_factory=list, max_length=64)
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/8``) of the balancers in front of
    ``authcore serve``: from them ``X-Forwarded-For`` and ``X-Forwarded-Proto`` name the client
    (throttling per address, ``Secure`` cookies). Empty (the default) trusts no such header."""
    lowball: LowballRoutesConfig = Field(default_factory=LowballRoutesConfig)
    """lowball's ``/builtins/auth`` routes."""

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.endswith("/") or "//" in value or re.search(r"\s", value)):
            raise ValueError("prefix must start with '/' and not end with '/' (e.g. /ispyb/api/v1)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError("trusted_proxies holds IP addresses or networks (10.0.0.0/8)") from None
        return value

    @field_validator("sso_state_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("sso_state_secret needs at least 32 bytes")
        return value
