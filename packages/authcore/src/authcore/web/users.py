"""User-management operations behind the web endpoints (lowball's client operations).

Framework-independent and synchronous: the FastAPI adapter runs them in a worker thread,
the Flask adapter calls them directly. Each takes already-decoded JSON, validates it with
the provider's package model (``new_user_model``, ...) and returns ``(status, body)``.
A provider without the operation raises :class:`~authcore.errors.NotSupported` (501).

Endpoints (rows of :data:`authcore.web.routes.ROUTES`, under the configured prefix), guarded
by :func:`require_admin` unless noted:
``WebSettings.admin_permission`` (default ``users:admin``) on every provider instance, or
``<admin_permission>:<instance>`` (``users:admin:site-ldap``) on that one instance:

====================================================  ================================
``GET    /auth/users/{provider}?search=&limit=&offset=``  list
``POST   /auth/users/{provider}``                          create (201)
``GET    /auth/users/{provider}/{login}``                  get
``PATCH  /auth/users/{provider}/{login}``                  update
``POST   /auth/users/{provider}/{login}/enable``           enable (204)
``POST   /auth/users/{provider}/{login}/disable``          disable (204)
``DELETE /auth/users/{provider}/{login}``                  delete (204)
``POST   /auth/users/{provider}/{login}/roles``            add roles ``{"roles": [...]}`` (204)
``DELETE /auth/users/{provider}/{login}/roles``            remove roles (204)
``GET    /auth/users/{provider}/{login}/sessions``         the user's live sessions
``DELETE /auth/users/{provider}/{login}/sessions``         end every one of them (204)
``GET    /auth/users/{provider}/{login}/second-factor``    the user's second factor (enrolled, ...)
``DELETE /auth/users/{provider}/{login}/second-factor``    reset it: a lost device (204)
``POST   /auth/users/{provider}/invitations``              invite ``{"email", "roles"}`` (202)
``POST   /auth/register/{provider}``                       self-register (public, 201)
``PATCH  /auth/me``                                        self-update (the caller)
====================================================  ================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..capabilities import Invitations
from ..errors import BadRequest, Forbidden, NotSupported
from ..manager import AuthManager
from ..models import Identity, VerifiedToken
from ..sessions import SessionRecord
from .common import validation_problems

__all__ = [
    "InviteBody",
    "RolesBody",
    "identity_payload",
    "session_payload",
    "run_operation",
    "require_admin",
    "OPERATIONS",
]

#: Operation names accepted by :func:`run_operation`.
OPERATIONS = frozenset(
    {
        "list",
        "get",
        "create",
        "update",
        "enable",
        "disable",
        "delete",
        "add_roles",
        "remove_roles",
        "register",
        "self_update",
        "sessions",
        "end_sessions",
        "invite",
        "second_factor",
        "second_factor_reset",
    }
)


class RolesBody(BaseModel):
    """``{"roles": [...]}`` for adding or removing roles."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    roles: list[str] = Field(min_length=1, max_length=100)


def require_admin(user: VerifiedToken, provider: str, admin_permission: str) -> None:
    """Raise :class:`~authcore.errors.Forbidden` unless *user* may manage the users of *provider*.

    ``admin_permission`` itself (``users:admin``) grants every provider instance, as it always
    did; ``<admin_permission>:<provider>`` (``users:admin:site-ldap``) grants that one instance.
    Checked with the instance named in the path, before anything looks the instance up, so an
    instance admin learns nothing about other instances but that they are forbidden.
    """
    if not (user.allows(admin_permission) or user.allows(f"{admin_permission}:{provider}")):
        raise Forbidden(f"missing permission: {admin_permission}:{provider}")


def identity_payload(identity: Identity) -> dict[str, Any]:
    """An identity as JSON, with lowball's ``client_id``/``roles`` view alongside."""
    data = identity.model_dump(mode="json")
    data["client_id"] = identity.login
    data["all_roles"] = identity.to_client_data()["roles"]
    return data


def session_payload(record: SessionRecord, current: str | None = None) -> dict[str, Any]:
    """A session as its user or an administrator sees it: times and ids, never the identity snapshot
    (it holds provider state such as an upstream refresh token)."""
    return {
        "session_id": record.session_id,
        "login": record.login,
        "provider": record.provider,
        "created_at": int(record.created_at),
        "last_used_at": int(record.last_used_at),
        "expires_at": int(min(record.idle_expires_at, record.absolute_expires_at)),
        "current": record.session_id == current,
    }


def _validate(model: type[BaseModel], body: Mapping[str, Any] | None) -> Any:
    try:
        return model.model_validate(dict(body or {}))
    except ValidationError as exc:
        raise BadRequest("the body is not valid", status_code=422, problems=validation_problems(exc)) from None


def _int(query: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    # isascii(): str.isdigit() is also true for superscripts ("²") that int() refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadRequest(f"{name} must be a non-negative integer")
    return min(int(raw), maximum)


class InviteBody(BaseModel):
    """``{"email": ..., "roles": [...]}``: whom to invite, and the roles their account gets."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    email: str = Field(min_length=3, max_length=320)
    roles: list[str] = Field(default_factory=list, max_length=100)


def _core_operation(
    manager: AuthManager, operation: str, provider: str, login: str | None, body: Mapping[str, Any] | None
) -> tuple[int, Any] | None:
    """The operations that are not :class:`~authcore.capabilities.UserManagement`'s: sessions (the
    core's, any provider), invitations and second factors (their own capabilities); ``None`` else."""
    if operation == "invite":
        invitations = manager.provider(provider)
        if not isinstance(invitations, Invitations):
            raise NotSupported(provider, "invite")
        invite = _validate(InviteBody, body)
        invitations.invite(invite.email, invite.roles)
        return 202, None
    if operation not in ("sessions", "end_sessions", "second_factor", "second_factor_reset"):
        return None
    if not login:
        raise BadRequest("a login is required")
    if operation == "end_sessions":
        manager.end_sessions_of(login, provider=provider)
        return 204, None
    if operation == "sessions":
        return 200, {"sessions": [session_payload(r) for r in manager.sessions_of(login, provider=provider)]}
    if operation == "second_factor_reset":  # a lost device: the administrator's word is the proof
        manager.remove_second_factor(provider, login, None)
        return 204, None
    status = manager.second_factor_status(provider, login)
    return 200, {
        "enrolled": status.enrolled,
        "required": status.required,
        "recovery_codes_left": status.recovery_codes_left,
    }


def run_operation(
    manager: AuthManager,
    operation: str,
    provider: str,
    *,
    login: str | None = None,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """Run one user-management *operation* on *provider*; return ``(status, JSON body or None)``."""
    done = _core_operation(manager, operation, provider, login, body)
    if done is not None:
        return done
    users = manager.users(provider)
    query = query or {}
    if operation == "list":
        search = query.get("search") or None
        if search is not None and len(search) > 256:
            raise BadRequest("search is at most 256 characters")
        found = users.list_users(
            search=search, limit=_int(query, "limit", 100, 1000), offset=_int(query, "offset", 0, 10**9)
        )
        return 200, {"users": [identity_payload(i) for i in found]}
    if operation == "create":
        return 201, identity_payload(users.create_user(_validate(users.new_user_model, body)))
    if operation == "register":
        return 201, identity_payload(users.self_register(_validate(users.registration_model, body)))
    if login is None:
        raise BadRequest("a login is required")
    if operation == "get":
        return 200, identity_payload(users.get_user(login))
    if operation == "update":
        return 200, identity_payload(users.update_user(login, _validate(users.user_update_model, body)))
    if operation == "self_update":
        return 200, identity_payload(users.self_update(login, _validate(users.self_update_model, body)))
    if operation == "enable":
        users.enable_user(login)
    elif operation == "disable":
        users.disable_user(login)
        manager.end_sessions_of(login, provider=provider)  # a disabled user's tokens die at once
    elif operation == "delete":
        users.delete_user(login)
        manager.end_sessions_of(login, provider=provider)
    elif operation == "add_roles":
        users.add_roles(login, _validate(RolesBody, body).roles)
    elif operation == "remove_roles":
        users.remove_roles(login, _validate(RolesBody, body).roles)
    else:
        raise BadRequest(f"unknown operation {operation!r}")
    return 204, None
