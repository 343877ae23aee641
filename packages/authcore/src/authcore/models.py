"""The values authcore hands to host applications: identities, login results, verified tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import permissions as _permissions

__all__ = ["Identity", "LoginResult", "VerifiedToken"]


class Identity(BaseModel):
    """Who logged in, as a provider describes them, plus the permissions authcore computed.

    ``login`` is the stable user name; ``provider`` the configured provider instance
    that vouched for it. ``to_person()`` and ``to_client_data()`` give py-ispyb's and
    lowball's views of the same data.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    login: str = Field(min_length=1, max_length=256)
    provider: str = ""
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    display_name: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    attributes: dict[str, Any] = Field(default_factory=dict)
    #: Provider-owned state kept server-side with the session (an upstream refresh token,
    #: say). Never serialised, never put in a token, never shown in a repr.
    session_state: dict[str, Any] | None = Field(default=None, exclude=True, repr=False)

    @field_validator("login")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("a login holds no control characters")
        return value

    @field_validator("permissions", mode="before")
    @classmethod
    def _normalize_permissions(cls, value: Any) -> tuple[str, ...]:
        return _permissions.normalize(value)

    def allows(self, permission: str) -> bool:
        """Whether this identity holds *permission* (wildcards honoured)."""
        return _permissions.allows(self.permissions, permission)

    def to_person(self) -> dict[str, Any]:
        """py-ispyb's ``Person`` fields: ``login``, ``givenName``, ``familyName``, ``emailAddress``."""
        return {
            "login": self.login,
            "givenName": self.given_name,
            "familyName": self.family_name,
            "emailAddress": self.email,
        }

    def to_client_data(self) -> dict[str, Any]:
        """lowball's ``ClientData``: ``client_id`` and ``roles`` (roles and groups together)."""
        return {"client_id": self.login, "roles": sorted({*self.roles, *self.groups})}


class LoginResult(BaseModel):
    """What a successful login returns: the identity and the tokens for its session."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    identity: Identity
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    #: Unix time at which the access token expires.
    expires_at: float
    #: Seconds from issue until the access token expires.
    expires_in: int
    session_id: str

    @property
    def login(self) -> str:
        """The identity's login."""
        return self.identity.login

    @property
    def permissions(self) -> tuple[str, ...]:
        """The identity's permissions."""
        return self.identity.permissions

    def __repr__(self) -> str:  # tokens stay out of reprs and logs
        return f"LoginResult(login={self.login!r}, session_id={self.session_id!r}, expires_in={self.expires_in})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A verified access token: what a request handler needs to know about the caller."""

    login: str
    provider: str
    permissions: frozenset[str]
    groups: tuple[str, ...]
    session_id: str
    token_id: str
    issued_at: float
    expires_at: float
    claims: dict[str, Any] = field(repr=False, compare=False)

    def allows(self, permission: str) -> bool:
        """Whether the caller holds *permission* (wildcards honoured)."""
        return _permissions.allows(self.permissions, permission)

    def require(self, required: _permissions.PermissionSpec) -> None:
        """Raise :class:`~authcore.errors.Forbidden` unless every permission is held."""
        _permissions.require(self.permissions, required)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no token in it)."""
        return {
            "login": self.login,
            "provider": self.provider,
            "permissions": sorted(self.permissions),
            "groups": list(self.groups),
            "session_id": self.session_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }
