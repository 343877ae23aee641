"""Optional provider capabilities: mixins a provider adds when its identity source allows.

Every method raises :class:`~authcore.errors.NotSupported` (the web layer answers 501)
until a provider overrides it; the manager detects a capability with ``isinstance``.
A provider author reads this module only for the capabilities their source has:
:class:`UserManagement` (lowball's client operations), :class:`UpstreamSessions`
(the identity provider keeps a session of its own), :class:`BearerTokens` (its tokens
verify like authcore's) and :class:`SingleSignOn` (browser redirects, OpenID Connect).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidCredentials, NotSupported
from .models import Identity
from .providers import LoginName, Password

#: The claims of a result that names none (read-only, so the one default is never changed).
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})

__all__ = [
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
    "PasswordSelfService",
    "Invitations",
    "SecondFactor",
    "SecondFactorRequired",
    "SecondFactorStatus",
    "TotpEnrolment",
]


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


class BearerIdentity(NamedTuple):
    """What :meth:`BearerTokens.verify_bearer` returns for a token it accepts.

    A named tuple rather than a frozen dataclass: it is built for every bearer token an
    identity provider checks, and a tuple is built in a fraction of the time (immutable all
    the same). ``claims`` stays out of the repr.
    """

    identity: Identity
    #: Unix time at which the token expires; the manager caches the result until then.
    expires_at: float
    #: The identity provider's session id (``sid``), if the token names one.
    session_id: str = ""
    token_id: str = ""
    issued_at: float = 0.0
    claims: Mapping[str, Any] = _NO_CLAIMS
    #: Unix time until which the manager may cache the result, when sooner than ``expires_at``
    #: (an introspected token is re-asked after a short while, so its revocation shows).
    cache_until: float | None = None

    def __repr__(self) -> str:
        return (
            f"BearerIdentity(identity={self.identity!r}, expires_at={self.expires_at!r}, "
            f"session_id={self.session_id!r}, token_id={self.token_id!r}, cache_until={self.cache_until!r})"
        )


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


class PasswordSelfService:
    """Capability: users change, reset and prove things about their own account.

    Tokens for a reset or a verification are single-use and expire; the provider delivers
    them itself (by e-mail, through a hook of its configuration) and never returns them, so
    the caller learns nothing it could pass to someone else. Every method raises
    :class:`~authcore.errors.NotSupported` until a provider overrides it.
    """

    def change_password(self, login: str, current_password: str, new_password: str) -> None:
        """Replace the password of *login*, who proves the current one.

        :class:`~authcore.errors.InvalidCredentials` when *current_password* is wrong (or the
        user is unknown or disabled: the same error); a new password the provider's policy
        refuses is a :class:`~authcore.errors.BadRequest` (422).
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "change_password")

    def request_password_reset(self, login_or_email: str) -> None:
        """Send a single-use, expiring reset token to the account named by login or e-mail.

        Always returns ``None``, whether or not such an account exists, and does the same
        work either way: the answer never tells who has an account. Only a delivery that
        fails for an existing account raises (:class:`~authcore.errors.ProviderUnavailable`).
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "request_password_reset")

    def reset_password(self, token: str, new_password: str) -> str:
        """Set a new password with a reset token; returns the login it belonged to.

        :class:`~authcore.errors.InvalidToken`, with one message, for a token that is unknown,
        used or expired; the token is spent only when the password is set.
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "reset_password")

    def request_email_verification(self, login: str) -> None:
        """Send *login* a single-use, expiring token proving they receive mail at their address."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "request_email_verification")

    def verify_email(self, token: str) -> str:
        """Mark the address the token was sent to as verified; returns the login.

        :class:`~authcore.errors.InvalidToken` for a token that is unknown, used or expired, or
        whose address is no longer the user's.
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "verify_email")


class Invitations:
    """Capability: an administrator invites someone by e-mail to register. The provider delivers a
    single-use, expiring invitation itself (never returns it); the account gets the roles given."""

    def invite(self, email: str, roles: Sequence[str] = ()) -> None:
        """Send an invitation to *email*. :class:`~authcore.errors.BadRequest` (422) for an address
        that cannot be one; :class:`~authcore.errors.ProviderUnavailable` when it cannot be sent."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "invite")


class SecondFactorRequired(InvalidCredentials):
    """The password was right and the login needs a second step (401, ``second_factor_required``).

    ``challenge`` opens that step (:meth:`AuthManager.complete_login
    <authcore.AuthManager.complete_login>`): a single-use secret that lives ``expires_in``
    seconds and proves only that the password was checked. ``methods`` says what the step
    accepts: ``totp`` and ``recovery`` for an enrolled user, ``enrol`` for one who must enrol
    first. Neither the challenge nor the login appear in the message or the repr.
    """

    code = "second_factor_required"
    default_message = "second factor required"

    def __init__(self, challenge: str, methods: tuple[str, ...], expires_in: int) -> None:
        super().__init__()
        self.challenge = challenge
        self.methods = methods
        self.expires_in = expires_in

    def __repr__(self) -> str:
        return f"SecondFactorRequired(methods={self.methods!r}, expires_in={self.expires_in!r})"


@dataclass(frozen=True, repr=False)
class TotpEnrolment:
    """A TOTP enrolment begun and not yet confirmed: what the user copies into an authenticator app.

    The recovery codes are shown now, once, and become valid with the enrolment when a first
    code from the app confirms it (GitHub's order: save the codes, then scan).
    """

    #: The shared secret, base32 (RFC 4648), as authenticator apps take it typed in.
    secret: str
    #: ``otpauth://totp/...`` (Google Authenticator's key URI format), for a QR code.
    uri: str
    #: Single-use codes that stand in for a TOTP code when the device is lost.
    recovery_codes: tuple[str, ...]

    def __repr__(self) -> str:  # every field is a secret
        return f"TotpEnrolment(recovery_codes={len(self.recovery_codes)})"


@dataclass(frozen=True)
class SecondFactorStatus:
    """What a user (or an administrator) may know about a user's second factor."""

    #: A confirmed TOTP enrolment exists: logins ask for a code.
    enrolled: bool
    #: The provider's policy (a group the user is in) demands one.
    required: bool
    #: Unused recovery codes.
    recovery_codes_left: int = 0


class SecondFactor:
    """Capability: logins of some users take a second step after the password (TOTP, RFC 6238).

    After :meth:`Provider.authenticate` accepts a password, the manager asks
    :meth:`second_factor_methods`; a non-empty answer turns the login into
    :class:`SecondFactorRequired`, and :meth:`AuthManager.complete_login
    <authcore.AuthManager.complete_login>` finishes it through :meth:`check_second_factor`.
    The manager keeps the pending login (single use, short-lived, every instance sees it) and
    counts wrong codes; the provider keeps the secrets and refuses a TOTP code whose time step
    was used already. Every method raises :class:`~authcore.errors.NotSupported` until a
    provider overrides it.
    """

    def second_factor_methods(self, identity: Identity) -> tuple[str, ...]:
        """What the login of *identity* (password checked) still needs: ``()`` nothing,
        ``("totp", "recovery")`` a code, ``("enrol",)`` an enrolment its policy demands.

        The manager calls it right after :meth:`Provider.authenticate` accepted, on the same
        thread, so a provider may hand over what ``authenticate`` read (every login pays this)."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "second_factor_methods")

    def check_second_factor(self, login: str, method: str, code: str) -> Identity:
        """Check *code* by *method* and return the user's identity as :meth:`Provider.authenticate` would.

        ``totp``: a current code of the confirmed secret, never one of a time step used before
        (so a code seen over a shoulder is dead once used); ``recovery``: an unused recovery
        code, spent; ``enrol``: a current code of the pending enrolment, which confirms it.
        :class:`~authcore.errors.InvalidCredentials`, with one message, for anything else
        (including a user disabled meanwhile).
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "check_second_factor")

    def second_factor_status(self, login: str) -> SecondFactorStatus:
        """The state of *login*'s second factor (:class:`~authcore.errors.UserNotFound` if absent)."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "second_factor_status")

    def begin_enrolment(self, login: str) -> TotpEnrolment:
        """A new secret and recovery codes for *login*, pending until :meth:`confirm_enrolment`.

        Replaces an earlier pending enrolment; :class:`~authcore.errors.UserChangeRefused` when
        a confirmed one exists (remove it first).
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "begin_enrolment")

    def confirm_enrolment(self, login: str, code: str) -> None:
        """Confirm the pending enrolment with a current code from the app (its time step counts as used).

        :class:`~authcore.errors.InvalidCredentials` for a wrong code or no pending enrolment.
        """
        raise NotSupported(getattr(self, "name", type(self).__name__), "confirm_enrolment")

    def remove_second_factor(self, login: str) -> None:
        """Drop *login*'s enrolment (confirmed or pending) and recovery codes. The caller decides
        who may: a user proves a code first; an administrator resets a lost device."""
        raise NotSupported(getattr(self, "name", type(self).__name__), "remove_second_factor")
