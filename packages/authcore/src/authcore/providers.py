"""The provider contract: the :class:`Provider` base class, its settings model, credential packages.

A provider turns credentials into an :class:`~authcore.models.Identity`. Everything
around that (input checks, permissions, tokens, sessions) is the core's job, so a
provider only fills in :meth:`Provider.authenticate`; the optional capabilities
(user management, upstream sessions, bearer tokens, single sign-on) are mixins in
:mod:`authcore.capabilities`.

Credential packages are pydantic models that reject empty, NUL-containing and
over-long input when they are built, that is before any provider code runs and so
before any network traffic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr
from typing_extensions import TypeVar

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
    "LoginName",
    "Password",
    "BearerString",
    "MAX_LOGIN_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MAX_BEARER_TOKEN_LENGTH",
    "WELL_KNOWN_SECRETS",
]

MAX_LOGIN_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
#: The longest bearer token or authorization code a credential package accepts (an
#: identity provider's token may be longer than one authcore issues itself).
MAX_BEARER_TOKEN_LENGTH = 16384

#: Values that appear in documentation and examples; refused under ``production: true``.
#: (Written as words, not as 23 quoted lines: it is a list to read, and this module is read whole.)
WELL_KNOWN_SECRETS = frozenset(
    "secret changeme change-me changeit password admin your_secret your-secret asecretkey "  # noqa: SIM905
    "mysecret my-secret supersecret secretkey secret_key default test testing development dev example "
    "keepitsecretkeepitsafe your-256-bit-secret please-change-me".split()
)


def _login(value: str) -> str:
    if not value.isprintable():
        raise ValueError("a login holds no control characters")
    return value


def _password(value: SecretStr) -> SecretStr:
    if "\x00" in value.get_secret_value():
        raise ValueError("a password holds no NUL characters")
    return value


def _bearer(value: str) -> str:
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("a token is printable ASCII without spaces")
    return value


#: A login name: 1-256 printable characters.
LoginName = Annotated[str, Field(min_length=1, max_length=MAX_LOGIN_LENGTH), AfterValidator(_login)]
#: A password: 1-1024 characters, no NUL. Kept as a :class:`~pydantic.SecretStr`.
Password = Annotated[SecretStr, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH), AfterValidator(_password)]
#: A bearer token or code: 1-16384 printable ASCII characters.
BearerString = Annotated[str, Field(min_length=1, max_length=MAX_BEARER_TOKEN_LENGTH), AfterValidator(_bearer)]


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
    #: The ``iss`` parameter of the authorization response (RFC 9207), when the identity
    #: provider sent one: a provider refuses a code that another issuer answered with (mix-up).
    issuer: Annotated[str, Field(min_length=1, max_length=2048)] | None = None

    def __repr__(self) -> str:
        return f"AuthorizationCodeCredentials(redirect_uri={self.redirect_uri!r})"


class AnonymousCredentials(Credentials):
    """No credentials at all; only development providers such as ``noauth`` accept it."""

    kind: ClassVar[str] = "anonymous"


class ProviderConfig(BaseModel):
    """Base of every provider's settings model (its ``config:`` mapping): unknown keys are errors.

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


# Covariant: a Provider[LdapConfig] is a Provider[ProviderConfig] wherever one is only read.
# The default lets third parties write a bare ``Provider`` base with ``Config = TheirConfig``.
ConfigT = TypeVar("ConfigT", bound=ProviderConfig, default=ProviderConfig, covariant=True)
# Aliases: inside Provider the name ``type`` is the class attribute, not the builtin.
ConfigClass = type[ProviderConfig]
CredentialClasses = tuple[type[Credentials], ...]


class Provider(ABC, Generic[ConfigT]):
    """An identity source. Subclass ``Provider[MyConfig]``, set :attr:`type`, fill in :meth:`authenticate`.

    ``self.config`` is the validated settings model, typed as *MyConfig*; :attr:`Config` is
    derived from the type argument. One instance serves one configured provider entry and is
    used from many threads at once: keep per-login state in locals, guard shared connections.
    """

    #: The provider type: the entry-point name under ``authcore.providers``.
    type: ClassVar[str] = ""
    #: The settings model the ``config:`` mapping is validated against (from ``Provider[MyConfig]``).
    Config: ClassVar[ConfigClass] = ProviderConfig
    #: The credential packages :meth:`authenticate` accepts, in order of preference.
    credential_types: ClassVar[CredentialClasses] = (PasswordCredentials,)
    #: Development-only providers are refused under ``production: true``.
    development_only: ClassVar[bool] = False
    #: Whether :meth:`authenticate` does I/O (network, disk). Asynchronous hosts run blocking
    #: providers in a worker thread; a provider that only computes sets this to ``False`` and
    #: its logins run on the event loop, saving the thread hand-off.
    blocking: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The type argument of this class's own ``Provider[...]``-like base (not an inherited
        # one); a TypeVar (a generic intermediate class) names no model: the inherited Config stays.
        argument = next(
            (
                arg
                for base in cls.__dict__.get("__orig_bases__", ())
                if isinstance(get_origin(base), type) and issubclass(get_origin(base), Provider)
                for arg in get_args(base)
                if isinstance(arg, type) and issubclass(arg, ProviderConfig)
            ),
            None,
        )
        declared = cls.__dict__.get("Config")
        if argument is not None and declared is not None and declared is not argument:
            raise TypeError(
                f"{cls.__name__}: Config = {declared.__name__} disagrees with the type argument "
                f"{argument.__name__}; declare the settings model once, as Provider[{argument.__name__}]"
            )
        if argument is not None:
            cls.Config = argument

    def __init__(self, name: str, config: ConfigT) -> None:
        if not isinstance(config, self.Config):  # the one check that makes ``self.config`` what it says
            raise TypeError(f"{self.__class__.__name__} needs {self.Config.__name__}, not {config.__class__.__name__}")
        self.name = name
        self.config: ConfigT = config

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
        return {"name": self.name, "type": self.type, "credentials": [c.kind for c in self.credential_types]}

    def health(self) -> Health:
        """Whether the identity source answers. The default assumes it does."""
        return Health(ok=True)

    def close(self) -> None:
        """Release connections; called once when the manager closes."""
        return None  # optional: most providers hold nothing to release

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} type={self.type!r}>"
