"""The route table: every auth endpoint, declared once; adapters bind it in a loop.

Each :class:`Route` names an operation of :class:`~authcore.web.core.WebCore`, its success
status and its guard. The exported HTTP contract suite (:mod:`authcore.testing.web_contract`)
probes every row on every adapter, so an adapter cannot serve a route or a status another
does not.

===========  ==========================================  ================  ======  ======
method       path (after the prefix)                     operation         status  guard
===========  ==========================================  ================  ======  ======
POST         /auth/login                                 login             200     public
POST         /auth/login/second-factor[/enrolment]       second_factor_…   200     public
GET          /auth/config                                config            200     public
POST         /auth/refresh                               refresh           200     public
GET, POST    /auth/refresh_session                       refresh_session   200     session
POST         /auth/logout                                logout            204     public
GET          /auth/me                                    me                200     user
PATCH        /auth/me                                    self_update       200     user
(4 rows)     /auth/me/second-factor[/confirm]            second_factor_…   varies  user
POST         /auth/register/{provider}                   register          201     public
GET          /auth/sessions                              sessions          200     user
DELETE       /auth/sessions                              sessions_end      204     user
DELETE       /auth/sessions/{session_id}                 session_end       204     user
GET, POST    /auth/tokens                                personal_tokens…  200/201 user
DELETE       /auth/tokens/{token_id}                     …_revoke          204     user
POST         /auth/password/change                       password_change   204     user
POST         /auth/password/forgot                       password_forgot   202     public
POST         /auth/password/reset                        password_reset    204     public
POST         /auth/email/verification                    email_verific…    202     user
POST         /auth/email/verify                          email_verify      204     public
(14 rows)    /auth/users/{provider}[/{login}[/...]]      list ... invite   varies  admin
GET          /auth/sso/{provider}/login                  sso_login         302     public
GET          /auth/sso/{provider}/callback               sso_callback      303     public
GET          /auth/health                                health            200     public
GET          /.well-known/jwks.json (never prefixed)     jwks              200     public
===========  ==========================================  ================  ======  ======

Guards: ``public`` (the operation checks what it needs), ``session`` (the cookie session),
``user`` (a verified caller: bearer token, or the cookie session with CSRF on unsafe
methods), ``admin`` (a caller holding ``admin_permission`` or ``<admin_permission>:<provider>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["ROUTES", "Route", "Guard", "routes_with", "path_of"]

Guard = Literal["public", "session", "user", "admin"]


@dataclass(frozen=True)
class Route:
    """One endpoint: ``method path`` → ``operation``, answering ``status`` on success."""

    method: str
    path: str
    operation: str
    status: int = 200
    guard: Guard = "public"
    prefixed: bool = True

    @property
    def name(self) -> str:
        """A unique endpoint name (``login``, ``refresh_session_post``, ``users_list``)."""
        return f"{self.operation}_{self.method.lower()}" if self.operation == "refresh_session" else self.operation

    @property
    def params(self) -> tuple[str, ...]:
        """The path parameters, in order (``provider``, ``login``)."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))

    def full_path(self, prefix: str) -> str:
        """The path under *prefix*, with ``{name}`` parameters (FastAPI's syntax)."""
        return f"{prefix}{self.path}" if self.prefixed else self.path

    def flask_path(self, prefix: str) -> str:
        """The path in werkzeug's ``<name>`` syntax."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.full_path(prefix))


_USERS = "/auth/users/{provider}"

#: Every auth endpoint. User-management rows: the operations of :mod:`authcore.web.users`.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/auth/login", "login"),
    Route("POST", "/auth/login/second-factor", "second_factor_login"),
    Route("POST", "/auth/login/second-factor/enrolment", "second_factor_login_enrolment"),
    Route("GET", "/auth/config", "config"),
    Route("POST", "/auth/refresh", "refresh"),
    Route("GET", "/auth/refresh_session", "refresh_session", guard="session"),
    Route("POST", "/auth/refresh_session", "refresh_session", guard="session"),
    Route("POST", "/auth/logout", "logout", 204),
    Route("GET", "/auth/me", "me", guard="user"),
    Route("PATCH", "/auth/me", "self_update", guard="user"),
    Route("GET", "/auth/me/second-factor", "second_factor_status", guard="user"),
    Route("POST", "/auth/me/second-factor", "second_factor_enrol", guard="user"),
    Route("POST", "/auth/me/second-factor/confirm", "second_factor_confirm", 204, guard="user"),
    Route("DELETE", "/auth/me/second-factor", "second_factor_remove", 204, guard="user"),
    Route("POST", "/auth/register/{provider}", "register", 201),
    Route("GET", "/auth/sessions", "sessions", guard="user"),
    Route("DELETE", "/auth/sessions", "sessions_end", 204, guard="user"),
    Route("DELETE", "/auth/sessions/{session_id}", "session_end", 204, guard="user"),
    Route("GET", "/auth/tokens", "personal_tokens", guard="user"),
    Route("POST", "/auth/tokens", "personal_token_create", 201, guard="user"),
    Route("DELETE", "/auth/tokens/{token_id}", "personal_token_revoke", 204, guard="user"),
    Route("POST", "/auth/password/change", "password_change", 204, guard="user"),
    Route("POST", "/auth/password/forgot", "password_forgot", 202),
    Route("POST", "/auth/password/reset", "password_reset", 204),
    Route("POST", "/auth/email/verification", "email_verification_request", 202, guard="user"),
    Route("POST", "/auth/email/verify", "email_verify", 204),
    Route("GET", _USERS, "users_list", guard="admin"),
    Route("POST", _USERS, "users_create", 201, guard="admin"),
    Route("GET", _USERS + "/{login}", "users_get", guard="admin"),
    Route("PATCH", _USERS + "/{login}", "users_update", guard="admin"),
    Route("DELETE", _USERS + "/{login}", "users_delete", 204, guard="admin"),
    Route("POST", _USERS + "/{login}/enable", "users_enable", 204, guard="admin"),
    Route("POST", _USERS + "/{login}/disable", "users_disable", 204, guard="admin"),
    Route("POST", _USERS + "/{login}/roles", "users_add_roles", 204, guard="admin"),
    Route("DELETE", _USERS + "/{login}/roles", "users_remove_roles", 204, guard="admin"),
    Route("GET", _USERS + "/{login}/sessions", "users_sessions", guard="admin"),
    Route("DELETE", _USERS + "/{login}/sessions", "users_end_sessions", 204, guard="admin"),
    Route("GET", _USERS + "/{login}/second-factor", "users_second_factor", guard="admin"),
    Route("DELETE", _USERS + "/{login}/second-factor", "users_second_factor_reset", 204, guard="admin"),
    Route("POST", _USERS + "/invitations", "users_invite", 202, guard="admin"),
    Route("GET", "/auth/sso/{provider}/login", "sso_login", 302),
    Route("GET", "/auth/sso/{provider}/callback", "sso_callback", 303),
    Route("GET", "/auth/health", "health"),
    Route("GET", "/.well-known/jwks.json", "jwks", prefixed=False),
)


def routes_with(paths: Mapping[str, str]) -> tuple[Route, ...]:
    """:data:`ROUTES` with the paths a site moved (``web.paths``: operation → path after the
    prefix, MXCuBE's ``/login/refresh_session`` say); every adapter serves this one table.

    Raises :class:`ValueError` for an unknown operation, a path that drops or adds a
    ``{parameter}`` of the row, or two rows that end up on one method and path.
    """
    operations = {route.operation for route in ROUTES}
    for operation, path in paths.items():
        if operation not in operations:
            raise ValueError(f"web.paths: unknown operation {operation!r} (known: {', '.join(sorted(operations))})")
        if not _PATH.fullmatch(path):
            raise ValueError(f"web.paths.{operation}: a path starts with '/' and holds no spaces, '?' or '#'")
    routes = tuple(replace(r, path=paths.get(r.operation, r.path)) for r in ROUTES)
    seen: set[tuple[str, str]] = set()
    for moved, original in zip(routes, ROUTES, strict=True):
        if sorted(moved.params) != sorted(original.params):
            raise ValueError(f"web.paths.{moved.operation}: keep the parameters {list(original.params)}")
        key = (moved.method, re.sub(r"\{\w+\}", "{}", moved.full_path("")))
        if key in seen:
            raise ValueError(f"web.paths: two endpoints on {moved.method} {moved.path}")
        seen.add(key)
    return routes


def path_of(routes: tuple[Route, ...], operation: str, prefix: str, **params: str) -> str:
    """The full path of *operation* in *routes*, its ``{parameters}`` filled in from *params*."""
    route = next(r for r in routes if r.operation == operation)
    return route.full_path(prefix).format(**params)


_PATH = re.compile(r"/[^\s?#]{0,255}")
