"""py-ispyb authentication plugins, loaded unchanged, and the tokens a py-ispyb service mints.

A py-ispyb plugin is a class with ``authenticate_by_login(login, password)`` or
``authenticate_by_token(token)`` returning an ``ispyb.models.Person`` (or ``None``), an
``authentication_type`` (``login`` or ``token``), ``configure(config)`` and ``config_export``,
whatever its base class (py-ispyb's ``AbstractAuthentication``, ours below, or none).
``AUTH_MODULE`` + ``AUTH_CLASS`` (or ``class:``) naming such a class loads it through
:func:`load_provider_class`, which wraps it in a :class:`PyIspybPlugin` provider: the entry's
``CONFIG`` goes to ``configure`` as written, the Person becomes an
:class:`~authcore.models.Identity`, and ``config_export`` keys reach ``/auth/config``.

:class:`PyIspybTokens` accepts tokens a py-ispyb service signed with its ``secret_key``. They
belong to no authcore session: nothing binds them to one, so logout cannot end them and they
verify until their ``exp``.
"""

from __future__ import annotations

import enum
import importlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr

from ..capabilities import BearerIdentity, BearerTokens
from ..errors import ConfigError, InvalidCredentials, InvalidToken, ProviderUnavailable, TokenExpired
from ..models import Identity
from ..plugins import load_class
from ..providers import Credentials, PasswordCredentials, Provider, ProviderConfig, TokenCredentials

__all__ = [
    "AbstractAuthentication",
    "AuthType",
    "PluginSettings",
    "PyIspybPlugin",
    "PyIspybTokens",
    "PyIspybTokensConfig",
    "adapt",
    "is_plugin_class",
    "load_provider_class",
    "person_identity",
]


class AuthType(enum.StrEnum):
    """What a plugin checks: a login and password, or a token (py-ispyb's ``AuthType``)."""

    login = "login"
    token = "token"


class AbstractAuthentication:
    """Base class for new py-ispyb-style plugins (py-ispyb's own base works as well).

    Override :meth:`authenticate_by_login` (or, with ``authentication_type = AuthType.token``,
    :meth:`authenticate_by_token`); return a ``Person`` on success and ``None`` otherwise.
    """

    authentication_type: AuthType = AuthType.login
    #: Keys of the entry's ``CONFIG`` a login page may see (served by ``/auth/config``).
    config_export: Sequence[str] = ()

    def configure(self, config: dict[str, Any]) -> None:
        """Receive the entry's ``CONFIG`` mapping, keys as the file writes them."""

    def authenticate(self, login: str | None, password: str | None, token: str | None) -> Any:
        """py-ispyb's dispatch by :attr:`authentication_type`."""
        if _auth_type(self.authentication_type) is AuthType.token:
            return self.authenticate_by_token(token or "")
        return self.authenticate_by_login(login or "", password or "")

    def authenticate_by_login(self, login: str, password: str) -> Any:
        """The ``Person`` these credentials belong to, or ``None``."""
        return None

    def authenticate_by_token(self, token: str) -> Any:
        """The ``Person`` this token belongs to, or ``None``."""
        return None


def _auth_type(value: Any) -> AuthType:
    # py-ispyb's own AuthType, ours, or a plain string: compared by value.
    try:
        return AuthType(getattr(value, "value", value))
    except ValueError:
        raise ConfigError(f"authentication_type must be 'login' or 'token', not {value!r}") from None


def is_plugin_class(obj: object) -> bool:
    """Whether *obj* is a py-ispyb-style plugin class (and not an authcore provider)."""
    return (
        isinstance(obj, type)
        and not issubclass(obj, Provider)
        and any(callable(getattr(obj, name, None)) for name in ("authenticate_by_login", "authenticate_by_token"))
    )


class PluginSettings(ProviderConfig):
    """A plugin's ``CONFIG``: any keys, passed to ``configure`` as written (the plugin checks them)."""

    model_config = ConfigDict(extra="allow")

    def raw(self) -> dict[str, Any]:
        """The mapping as the configuration gave it."""
        return dict(self.model_extra or {})

    def __repr__(self) -> str:  # values may be secrets (KEYCLOAK_CLIENT_SECRET_KEY): keys only
        return f"PluginSettings(keys={sorted(self.model_extra or {})!r})"

    __str__ = __repr__


def person_identity(person: Any) -> Identity:
    """The identity of a py-ispyb ``Person``: ``login``, ``givenName``, ``familyName``, ``emailAddress``.

    ``personId``, when the plugin set it, is kept in ``attributes``.
    """
    login = getattr(person, "login", None)
    if not isinstance(login, str) or not login:
        raise ProviderUnavailable("the py-ispyb plugin returned a Person without a login")

    def text(name: str) -> str | None:
        value = getattr(person, name, None)
        return value if isinstance(value, str) and value else None

    person_id = getattr(person, "personId", None)
    attributes = {"personId": person_id} if type(person_id) is int else {}
    return Identity(
        login=login,
        given_name=text("givenName"),
        family_name=text("familyName"),
        email=text("emailAddress"),
        attributes=attributes,
    )


# Inside a provider class the name ``type`` is the class attribute, not the builtin.
PluginClass = type[Any]


class PyIspybPlugin(Provider[PluginSettings]):
    """A provider running one py-ispyb plugin class (made per class by :func:`adapt`)."""

    type: ClassVar[str] = "pyispyb"
    #: The plugin class this adapter runs.
    plugin_class: ClassVar[PluginClass]

    def __init__(self, name: str, config: PluginSettings) -> None:
        super().__init__(name, config)
        self.plugin = self.plugin_class()
        configure = getattr(self.plugin, "configure", None)
        if callable(configure):
            configure(config.raw())
        exported = getattr(self.plugin, "config_export", ())
        if isinstance(exported, str) or not all(isinstance(key, str) for key in exported):
            raise ConfigError(f"provider {name!r}: config_export must be a list of CONFIG keys")
        missing = sorted(set(exported).difference(config.raw()))
        if missing:
            # py-ispyb would fail on /auth/config; we refuse at start, naming the keys.
            raise ConfigError(f"provider {name!r}: config_export names keys CONFIG does not set: {missing}")
        self.exported: tuple[str, ...] = tuple(exported)

    def authenticate(self, credentials: Credentials) -> Identity:
        """Ask the plugin; a falsy answer (py-ispyb's ``None``) is wrong credentials."""
        if isinstance(credentials, TokenCredentials):
            person = self.plugin.authenticate_by_token(credentials.token)
        elif isinstance(credentials, PasswordCredentials):
            person = self.plugin.authenticate_by_login(credentials.login, credentials.password.get_secret_value())
        else:
            raise InvalidCredentials()
        if not person:
            raise InvalidCredentials()
        return person_identity(person)

    def public_config(self) -> dict[str, Any]:
        """The base public config plus ``config``: the ``config_export`` keys and their values."""
        raw = self.config.raw()
        return {**super().public_config(), "config": {key: raw[key] for key in self.exported}}


_ADAPTERS: dict[PluginClass, type[PyIspybPlugin]] = {}
_ADAPTERS_LOCK = threading.Lock()


def adapt(plugin_class: PluginClass) -> type[PyIspybPlugin]:
    """The provider class running *plugin_class* (one per plugin class)."""
    with _ADAPTERS_LOCK:
        adapter = _ADAPTERS.get(plugin_class)
        if adapter is None:
            adapter = _ADAPTERS[plugin_class] = _adapter(plugin_class)
        return adapter


def _adapter(plugin_class: PluginClass) -> type[PyIspybPlugin]:
    kind = _auth_type(getattr(plugin_class, "authentication_type", AuthType.login))
    method = f"authenticate_by_{kind.value}"
    if not callable(getattr(plugin_class, method, None)):
        raise ConfigError(f"{plugin_class.__qualname__}: authentication_type is {kind.value!r} but it has no {method}")
    credential = TokenCredentials if kind is AuthType.token else PasswordCredentials
    namespace = {"plugin_class": plugin_class, "credential_types": (credential,), "__module__": __name__}
    return type(f"PyIspyb_{plugin_class.__name__}", (PyIspybPlugin,), namespace)


def load_provider_class(path: str) -> type[Provider]:
    """:func:`authcore.plugins.load_class`, which also takes a py-ispyb plugin class (adapted)."""
    try:
        return load_class(path)
    except ConfigError:
        plugin = _plugin_at(path)
        if plugin is None:
            raise  # neither a provider nor a plugin: load_class's message says what is wrong
        return adapt(plugin)


def _plugin_at(path: str) -> type[Any] | None:
    module_name, _, name = path.rpartition(":") if ":" in path else path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), name, None)
    except Exception:  # load_class already reported why the import failed
        return None
    return obj if is_plugin_class(obj) else None


# --------------------------------------------------------------------------- tokens


class PyIspybTokensConfig(ProviderConfig):
    """Settings of :class:`PyIspybTokens`: py-ispyb's ``secret_key`` and ``jwt_coding_algorithm``."""

    secret: SecretStr = Field(min_length=1)
    """The py-ispyb service's ``secret_key``."""
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    """Its ``jwt_coding_algorithm``; tokens signed any other way are refused."""
    leeway: float = Field(default=10.0, ge=0, le=300)
    """Clock skew tolerated on ``exp`` and ``iat``, in seconds."""

    def production_issues(self) -> list[str]:
        """The base checks, and a secret shorter than 32 bytes."""
        issues = super().production_issues()
        if len(self.secret.get_secret_value().encode("utf-8")) < 32:
            issues.append("secret is shorter than 32 bytes")
        return issues


#: The JOSE header members PyJWT writes; a py-ispyb token carries no others.
_PYISPYB_HEADER = frozenset({"alg", "typ"})


class PyIspybTokens(BearerTokens, Provider[PyIspybTokensConfig]):
    """Accepts tokens a py-ispyb service minted (``login``/``username``, ``permissions``, ``iat``, ``exp``).

    As a bearer check (:meth:`verify_bearer`) such a token verifies like ours, with no session:
    ``session_id`` is empty, logout cannot end it, it is good until ``exp``. As a login
    (``token``), it starts an authcore session for its user.
    """

    type: ClassVar[str] = "pyispyb-tokens"
    credential_types = (TokenCredentials,)
    blocking: ClassVar[bool] = False  # an HMAC check: no I/O

    def authenticate(self, credentials: Credentials) -> Identity:
        """The identity of a py-ispyb token; any other token is wrong credentials."""
        if not isinstance(credentials, TokenCredentials):
            raise InvalidCredentials()
        try:
            result = self.verify_bearer(credentials.token)
        except InvalidToken:
            raise InvalidCredentials() from None
        if result is None:
            raise InvalidCredentials()
        return result.identity

    def verify_bearer(self, token: str) -> BearerIdentity | None:
        """``None`` unless *token* is signed with the py-ispyb secret; then its identity or an error."""
        import jwt  # deferred: only deployments that accept py-ispyb tokens use PyJWT at run time

        secret = self.config.secret.get_secret_value()
        try:
            header = jwt.get_unverified_header(token)
            if not _PYISPYB_HEADER.issuperset(header) or header.get("typ", "JWT") != "JWT":
                return None  # not PyJWT's plain header (ours say at+jwt): not a py-ispyb token
            # As py-ispyb decodes, plus required exp and iat; a token with an aud is refused,
            # as PyJWT refuses it there when no audience is asked for.
            options: Any = {"require": ["exp", "iat"]}
            claims = jwt.decode(
                token, secret, algorithms=[self.config.algorithm], options=options, leeway=self.config.leeway
            )
        except (jwt.DecodeError, jwt.InvalidAlgorithmError):
            return None  # malformed, another algorithm or another secret: not provably py-ispyb's
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.PyJWTError:
            raise InvalidToken("py-ispyb token refused") from None
        return _bearer_identity(claims)


def _strings(value: Any) -> tuple[str, ...] | None:
    if type(value) is list and all(type(item) is str for item in value):
        return tuple(value)
    return None


def _bearer_identity(claims: Mapping[str, Any]) -> BearerIdentity:
    """The identity of a verified py-ispyb token: ``login`` (current py-ispyb) or ``username`` (older)."""
    login = claims.get("login", claims.get("username"))
    permissions = _strings(claims.get("permissions", []))
    groups = _strings(claims.get("groups", []))
    person_id = claims.get("personId")
    if (
        type(login) is not str
        or not login
        or permissions is None
        or groups is None
        or (person_id is not None and type(person_id) is not int)
    ):
        raise InvalidToken("py-ispyb token claims have the wrong shape")
    try:
        identity = Identity(
            login=login,
            groups=groups,
            permissions=permissions,
            attributes={} if person_id is None else {"personId": person_id},
        )
    except ValueError:
        raise InvalidToken("py-ispyb token claims have the wrong shape") from None
    return BearerIdentity(
        identity=identity, expires_at=float(claims["exp"]), issued_at=float(claims["iat"]), claims=dict(claims)
    )
