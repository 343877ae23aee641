"""The provider contract: the :class:`Provider` base class, credential packages, capabilities.

A provider turns credentials into an :class:`~authcore.models.Identity`. Everything
around that (input checks, permissions, tokens, sessions) is the core's job, so a
provider only fills in :meth:`Provider.authenticate` and, where its identity source
allows, the optional capabilities below.

Credential packages are pydantic models that reject empty, NUL-containing and
over-long input when they are built, that is before any provider code runs and so
before any network traffic.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from .errors import NotSupported
from .models import Identity

__all__ = [
    "Provider",
    "ProviderConfig",
    "Health",
    "Credentials",
    "PasswordCredentials",
    "TokenCredentials",
    "AuthorizationCodeCredentials",
    "AnonymousCredentials",
    "UpstreamSessions",
    "BearerTokens",
    "BearerIdentity",
    "SingleSignOn",
    "AuthorizationRequest",
    "UserManagement",
    "NewUser",
    "UserUpdate",
    "Registration",
    "SelfUpdate",
    "LoginName",
    "Password",
    "BearerString",
    "MAX_LOGIN_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MAX_TOKEN_LENGTH",
    "WELL_KNOWN_SECRETS",
]

log = logging.getLogger("authcore.providers")

MAX_LOGIN_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
MAX_TOKEN_LENGTH = 16384

#: Values that appear in documentation and examples; refused under ``production: true``.
WELL_KNOWN_SECRETS = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "changeit",
        "password",
        "admin",
        "your_secret",
        "your-secret",
        "asecretkey",
        "mysecret",
        "my-secret",
        "supersecret",
        "secretkey",
        "secret_key",
        "default",
        "test",
        "testing",
        "development",
        "dev",
        "example",
        "keepitsecretkeepitsafe",
        "your-256-bit-secret",
        "please-change-me",
    }
)


def _login(value: str) -> str:
    if not value.isprintable():
        raise ValueError("a login holds no control characters")
    return value


def _password(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a password holds no NUL characters")
    return value


def _bearer(value: str) -> str:
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("a token is printable ASCII without spaces")
    return value


#: A login name: 1-256 printable characters.
LoginName = Annotated[str, Field(min_length=1, max_length=MAX_LOGIN_LENGTH), AfterValidator(_login)]
#: A password: 1-1024 characters, no NUL. Kept as a :class:`~pydantic.SecretStr`.
Password = Annotated[
    SecretStr,
    Field(min_length=1, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(lambda s: SecretStr(_password(s.get_secret_value()))),
]
#: A bearer token or code: 1-16384 printable ASCII characters.
BearerString = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH), AfterValidator(_bearer)]


class Credentials(BaseModel):
    """Base of the credential packages a provider accepts (lowball's ``AuthPackage``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True, defer_build=True)

    #: What the credentials are called in messages and ``public_config()``.
    kind: ClassVar[str] = "credentials"


class PasswordCredentials(Credentials):
    """A login name and a password."""

    kind: ClassVar[str] = "password"
    login: LoginName
    password: Password


class TokenCredentials(Credentials):
    """A bearer token issued elsewhere (py-ispyb's ``token`` field, an SSO access token)."""

    kind: ClassVar[str] = "token"
    token: BearerString

    def __repr__(self) -> str:
        return "TokenCredentials(token=<hidden>)"


class AuthorizationCodeCredentials(Credentials):
    """An OAuth 2 authorization code with its PKCE verifier and the redirect URI it was sent to."""

    kind: ClassVar[str] = "authorization_code"
    code: BearerString
    redirect_uri: Annotated[str, Field(min_length=1, max_length=2048)]
    code_verifier: BearerString | None = None
    nonce: BearerString | None = None

    def __repr__(self) -> str:
        return f"AuthorizationCodeCredentials(redirect_uri={self.redirect_uri!r})"


class AnonymousCredentials(Credentials):
    """No credentials at all; only development providers such as ``noauth`` accept it."""

    kind: ClassVar[str] = "anonymous"


class ProviderConfig(BaseModel):
    """Base of every provider's configuration model: unknown keys are errors.

    Subclasses declare fields; py-ispyb's upper-case keys can be accepted with
    ``validation_alias=AliasChoices("uri", "LDAP_URI")``. Secrets are
    :class:`~pydantic.SecretStr` so they never show in a repr.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)

    #: Names of boolean fields that switch TLS certificate verification; ``False`` is refused in production.
    tls_verify_fields: ClassVar[tuple[str, ...]] = ()

    def production_issues(self) -> list[str]:
        """Reasons this configuration must not run with ``production: true``; empty if fine."""
        issues = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().strip().lower() in WELL_KNOWN_SECRETS:
                issues.append(f"{name} is a well-known example value")
            if name in self.tls_verify_fields and value is False:
                issues.append(f"{name} switches TLS certificate verification off")
        return issues


@dataclass(frozen=True)
class Health:
    """The result of :meth:`Provider.health`."""

    ok: bool
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# Aliases: inside Provider the name ``type`` is the class attribute, not the builtin.
ConfigClass = type[ProviderConfig]
CredentialClasses = tuple[type[Credentials], ...]


class Provider(ABC):
    """An identity source. Subclass it, set :attr:`type` and :attr:`Config`, fill in :meth:`authenticate`.

    One instance serves one configured provider entry and is used from many threads
    at once: keep per-login state in locals, and guard shared connections.
    """

    #: The provider type: the entry-point name under ``authcore.providers``.
    type: ClassVar[str] = ""
    #: The pydantic model the ``config:`` mapping is validated against.
    Config: ClassVar[ConfigClass] = ProviderConfig
    #: The credential packages :meth:`authenticate` accepts, in order of preference.
    credential_types: ClassVar[CredentialClasses] = (PasswordCredentials,)
    #: Development-only providers are refused under ``production: true``.
    development_only: ClassVar[bool] = False
    #: Whether :meth:`authenticate` does I/O (network, disk). Asynchronous hosts run blocking
    #: providers in a worker thread; a provider that only computes sets this to ``False`` and
    #: its logins run on the event loop, saving the thread hand-off.
    blocking: ClassVar[bool] = True

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    def authenticate(self, credentials: Credentials) -> Identity:
        """Check *credentials* and return who they belong to.

        Raise :class:`~authcore.errors.InvalidCredentials` when they are wrong (the same
        way whether or not the login exists) and
        :class:`~authcore.errors.ProviderUnavailable` when the source cannot answer.
        The returned identity's ``provider`` field is filled in by the core.
        """

    def public_config(self) -> dict[str, Any]:
        """What a login page may know about this provider (py-ispyb's ``config_export``).

        Must be JSON-serialisable and must never hold a secret. Subclasses extend the base dict.
        """
        return {
            "name": self.name,
            "type": self.type,
            "credentials": [c.kind for c in self.credential_types],
        }

    def health(self) -> Health:
        """Whether the identity source answers. The default assumes it does."""
        return Health(ok=True)

    def close(self) -> None:
        """Release connections; called once when the manager closes."""
        return None  # optional: most providers hold nothing to release

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} type={self.type!r}>"


class UpstreamSessions:
    """Capability: the identity provider keeps a session of its own (Keycloak).

    :meth:`Provider.authenticate` stores what it needs in ``Identity.session_state``
    (kept server-side with the authcore session, never in a token).
    """

    def refresh_upstream(self, identity: Identity) -> Identity:
        """Refresh the upstream session; return the identity with its new state."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "refresh_upstream")

    def logout_upstream(self, identity: Identity) -> None:
        """End the upstream session."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "logout_upstream")


@dataclass(frozen=True)
class BearerIdentity:
    """What :meth:`BearerTokens.verify_bearer` returns for a token it accepts."""

    identity: Identity
    #: Unix time at which the token expires; the manager caches the result until then.
    expires_at: float
    #: The identity provider's session id (``sid``), if the token names one.
    session_id: str = ""
    token_id: str = ""
    issued_at: float = 0.0
    claims: dict[str, Any] = field(default_factory=dict, repr=False)


class BearerTokens:
    """Capability: the provider checks bearer tokens its identity source issued.

    :meth:`AuthManager.verify <authcore.AuthManager.verify>` asks providers with this
    capability about tokens that are not authcore's own, so a Keycloak access token from
    a front-end that did single sign-on verifies like one of ours.
    """

    name: str

    def verify_bearer(self, token: str) -> BearerIdentity | None:
        """Check *token*: ``None`` when it was not issued by this provider's source;
        :class:`~authcore.errors.InvalidToken` (or ``TokenExpired``) when it was but fails
        a check; :class:`~authcore.errors.ProviderUnavailable` when that cannot be told."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "verify_bearer")


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send a browser for single sign-on, and what to keep until it comes back.

    The web layer keeps ``state``, ``nonce`` and ``code_verifier`` server-side (or in a
    signed, HttpOnly cookie) and, on the callback, checks ``state`` and passes the code
    with ``code_verifier`` and ``nonce`` to :meth:`AuthManager.login
    <authcore.AuthManager.login>`.
    """

    url: str
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str

    def __repr__(self) -> str:  # the verifier is a secret until the callback
        return f"AuthorizationRequest(redirect_uri={self.redirect_uri!r})"


class SingleSignOn:
    """Capability: the provider sends browsers to an identity provider (OpenID Connect
    authorization code flow with PKCE S256, state and nonce) and takes the code back as
    :class:`AuthorizationCodeCredentials`."""

    name: str

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A fresh request: random state, nonce and PKCE verifier, and the URL to redirect to."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "authorization_request")

    def logout_url(self, identity: Identity, post_logout_redirect_uri: str | None = None) -> str | None:
        """Where to send the browser to end the identity provider's session (``None``: nowhere)."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "logout_url")


class NewUser(BaseModel):
    """What an administrator gives to create a user (lowball's ``CreateClientPackage``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, defer_build=True)

    login: LoginName
    password: Password | None = None
    given_name: str | None = Field(default=None, max_length=256)
    family_name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=256)
    roles: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] = ()
    enabled: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)


class UserUpdate(BaseModel):
    """What an administrator may change on a user (lowball's ``UpdateClientPackage``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, defer_build=True)

    given_name: str | None = Field(default=None, max_length=256)
    family_name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=256)
    attributes: dict[str, Any] | None = None


class Registration(BaseModel):
    """What a user gives to register themselves (lowball's ``ClientRegistrationPackage``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, defer_build=True)

    login: LoginName
    password: Password
    given_name: str | None = Field(default=None, max_length=256)
    family_name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)


class SelfUpdate(BaseModel):
    """What a user may change about themselves (lowball's ``SelfUpdateClientPackage``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, defer_build=True)

    given_name: str | None = Field(default=None, max_length=256)
    family_name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=256)
    password: Password | None = None


UserOperation = Literal[
    "list_users",
    "get_user",
    "create_user",
    "update_user",
    "enable_user",
    "disable_user",
    "delete_user",
    "set_password",
    "add_roles",
    "remove_roles",
    "self_register",
    "self_update",
]


class UserManagement:
    """Capability: the provider can manage users (lowball's client operations).

    Every method raises :class:`~authcore.errors.NotSupported` until a provider
    overrides it, so a read-only source implements ``list_users``/``get_user`` only.
    Identities returned here carry no permissions; the manager adds them.
    """

    #: Package classes, overridable per provider like lowball's ``*_package_class``.
    new_user_model: ClassVar[type[NewUser]] = NewUser
    user_update_model: ClassVar[type[UserUpdate]] = UserUpdate
    registration_model: ClassVar[type[Registration]] = Registration
    self_update_model: ClassVar[type[SelfUpdate]] = SelfUpdate

    USER_OPERATIONS: ClassVar[tuple[str, ...]] = UserOperation.__args__  # type: ignore[attr-defined]

    def _unsupported(self, operation: str) -> NotSupported:
        return NotSupported(getattr(self, "name", type(self).__name__), operation)

    def supported_user_operations(self) -> tuple[str, ...]:
        """The operations this provider overrides, in the order of :attr:`USER_OPERATIONS`."""
        return tuple(op for op in self.USER_OPERATIONS if getattr(type(self), op) is not getattr(UserManagement, op))

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """Users, optionally filtered by a substring of the login/name, at most *limit*."""
        raise self._unsupported("list_users")

    def get_user(self, login: str) -> Identity:
        """One user; :class:`~authcore.errors.UserNotFound` if absent."""
        raise self._unsupported("get_user")

    def create_user(self, user: NewUser) -> Identity:
        """Create a user; returns it."""
        raise self._unsupported("create_user")

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        """Change attributes of a user (administrator); returns the user."""
        raise self._unsupported("update_user")

    def enable_user(self, login: str) -> None:
        """Allow the user to log in again."""
        raise self._unsupported("enable_user")

    def disable_user(self, login: str) -> None:
        """Stop the user from logging in."""
        raise self._unsupported("disable_user")

    def delete_user(self, login: str) -> None:
        """Remove the user."""
        raise self._unsupported("delete_user")

    def set_password(self, login: str, password: str) -> None:
        """Replace the user's password."""
        raise self._unsupported("set_password")

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        """Give the user roles or group memberships."""
        raise self._unsupported("add_roles")

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        """Take roles or group memberships away."""
        raise self._unsupported("remove_roles")

    def self_register(self, registration: Registration) -> Identity:
        """A user creates their own account."""
        raise self._unsupported("self_register")

    def self_update(self, login: str, changes: SelfUpdate) -> Identity:
        """A user changes their own attributes."""
        raise self._unsupported("self_update")
