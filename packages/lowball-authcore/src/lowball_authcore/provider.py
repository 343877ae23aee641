"""A lowball ``AuthProvider`` as an authcore provider (type ``lowball``).

The configuration names the lowball class by ``"module:Class"`` and gives the mapping
lowball would have passed to its ``__init__`` (a lowball config's ``auth_provider:``
section)::

    providers:
      - name: legacy
        type: lowball
        config:
          auth_provider: my_service.auth:MyCustomAuthProvider
          auth_provider_config: {hostname: ldap.example.org, password: ${BIND_PW}}

A login builds the class's ``auth_package_class`` from authcore's credentials, calls
``authenticate`` and turns the returned ``ClientData`` into an identity whose groups and
roles are the client's roles. The optional client operations lowball defines are
authcore's :class:`~authcore.capabilities.UserManagement`. lowball is imported when a
provider of this type starts, not when this module is imported.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError

from authcore import (
    Credentials,
    Health,
    Identity,
    InvalidCredentials,
    PasswordCredentials,
    Provider,
    ProviderConfig,
    TokenCredentials,
)
from authcore.capabilities import NewUser, Registration, SelfUpdate, UserManagement, UserUpdate
from authcore.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    NotSupported,
    ProviderUnavailable,
    UserChangeRefused,
    UserExists,
    UserNotFound,
)
from authcore.providers import WELL_KNOWN_SECRETS

from .packages import Signature, package_kwargs

__all__ = ["LowballProvider", "LowballConfig", "OPERATIONS"]

log = logging.getLogger("lowball_authcore")

_T = TypeVar("_T")
# An alias: inside the provider class the name ``type`` is the class attribute, not the builtin.
CredentialKinds = tuple[type[Credentials], ...]
_CLASS_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
#: Keys of ``auth_provider_config`` whose values are checked against well-known secrets in production.
_SECRET_KEY = re.compile(r"pass|secret|key|token", re.IGNORECASE)

#: authcore operation → (lowball method, lowball package-class property or ``None``).
OPERATIONS: dict[str, tuple[str, str | None]] = {
    "list_users": ("list_clients", None),
    "get_user": ("get_client", None),
    "create_user": ("create_client", "create_client_package_class"),
    "update_user": ("update_client", "update_client_package_class"),
    "enable_user": ("enable_client", None),
    "disable_user": ("disable_client", None),
    "delete_user": ("delete_client", None),
    "add_roles": ("add_roles", None),
    "remove_roles": ("delete_roles", None),
    "self_register": ("client_self_register", "client_registration_package_class"),
    "self_update": ("client_self_update", "self_update_client_package_class"),
}


class LowballConfig(ProviderConfig):
    """Settings of a ``lowball`` provider."""

    auth_provider: str = Field(pattern=_CLASS_PATH.pattern, max_length=300)
    """The lowball ``AuthProvider`` subclass, as ``"package.module:ClassName"``."""
    auth_provider_config: dict[str, Any] = Field(default_factory=dict, repr=False)
    """Keyword arguments for the class's ``__init__`` (lowball's ``auth_provider:`` section). Never shown
    in a repr: it usually holds a bind password or a client secret."""
    login_field: str | None = Field(default=None, pattern=r"^[A-Za-z_]\w*$")
    """The auth package's parameter that takes the login (default: found among ``username``, ``client_id``, …)."""
    password_field: str | None = Field(default=None, pattern=r"^[A-Za-z_]\w*$")
    """The auth package's parameter that takes the password (default: ``password``, …)."""
    token_field: str | None = Field(default=None, pattern=r"^[A-Za-z_]\w*$")
    """The auth package's parameter that takes a bearer token (default: ``token``, …)."""
    roles_as: Literal["groups", "roles", "both"] = "both"
    """What a client's lowball roles become: groups (mapped by ``permissions.groups``), roles, or both."""

    def production_issues(self) -> list[str]:
        """The base checks, and well-known example values under secret-looking keys of the class's config."""
        issues = super().production_issues()
        for key, value in self.auth_provider_config.items():
            if _SECRET_KEY.search(key) and isinstance(value, str) and value.strip().lower() in WELL_KNOWN_SECRETS:
                issues.append(f"auth_provider_config.{key} is a well-known example value")
        return issues


def _lowball() -> Any:
    """lowball's modules, imported on first use (``import lowball_authcore`` must not import lowball)."""
    from lowball.models.authentication_models import ClientData  # type: ignore[import-untyped]
    from lowball.models.provider_models import AuthProvider  # type: ignore[import-untyped]
    from werkzeug.exceptions import HTTPException  # lowball's exceptions and Flask's abort() alike

    return AuthProvider, ClientData, HTTPException


def _load(path: str) -> type[Any]:
    auth_provider_base = _lowball()[0]
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"auth_provider {path!r}: cannot import module {module_name!r} ({exc.name})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, auth_provider_base)):
        raise ConfigError(f"auth_provider {path!r} is not a subclass of lowball's AuthProvider")
    abstract = getattr(cls, "__abstractmethods__", None)
    if abstract:
        raise ConfigError(f"auth_provider {path!r} is abstract: it lacks {sorted(abstract)}")
    return cls


class LowballProvider(Provider[LowballConfig], UserManagement):
    """A lowball ``AuthProvider`` behind authcore's provider contract."""

    type = "lowball"
    credential_types: ClassVar[CredentialKinds] = (PasswordCredentials, TokenCredentials)

    def __init__(self, name: str, config: LowballConfig) -> None:
        super().__init__(name, config)
        cls = _load(config.auth_provider)
        _, self._client_data, self._http_error = _lowball()
        try:
            self.lowball = cls(**config.auth_provider_config)
        except Exception as exc:
            # TypeError names the parameters the class lacks; other messages may quote a value.
            detail = f": {exc}" if isinstance(exc, TypeError) else ""
            raise ConfigError(
                f"provider {name!r}: {config.auth_provider} refused auth_provider_config ({type(exc).__name__}{detail})"
            ) from None
        package_class = self._call("login", lambda: self.lowball.auth_package_class)
        if not isinstance(package_class, type):
            raise ConfigError(f"provider {name!r}: {config.auth_provider}.auth_package_class is not a class")
        self._package_class: type[Any] = package_class
        signature = Signature.of(self._package_class)
        self._login_field = signature.find("login", config.login_field)
        self._password_field = signature.find("password", config.password_field)
        self._token_field = signature.find("token", config.token_field)
        kinds: list[type[Credentials]] = []
        if self._login_field and self._password_field:
            kinds.append(PasswordCredentials)
        if self._token_field:
            kinds.append(TokenCredentials)
        if not kinds:
            raise ConfigError(
                f"provider {name!r}: {self._package_class.__name__} takes neither a login and a password nor a "
                "token; name its parameters with login_field/password_field or token_field"
            )
        # Per instance: what this lowball class's auth package takes.
        self.credential_types = tuple(kinds)  # type: ignore[misc]
        self._signatures: dict[str, Signature] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ login

    def authenticate(self, credentials: Credentials) -> Identity:
        """Build the lowball auth package, call ``authenticate``, turn the ``ClientData`` into an identity."""
        if isinstance(credentials, PasswordCredentials) and self._login_field and self._password_field:
            values = {self._login_field: credentials.login, self._password_field: credentials.password}
        elif isinstance(credentials, TokenCredentials) and self._token_field:
            values = {self._token_field: credentials.token}
        else:
            raise InvalidCredentials()
        kwargs = {key: v.get_secret_value() if isinstance(v, SecretStr) else v for key, v in values.items()}
        try:
            package = self._package_class(**kwargs)
        except Exception:
            raise InvalidCredentials() from None  # the package refused the input: a failed login, no more
        client = self._call("login", lambda: self.lowball.authenticate(package))
        return self._identity(client, InvalidCredentials)

    def _identity(self, client: Any, error: Callable[[], AuthError]) -> Identity:
        if not isinstance(client, self._client_data):
            raise ProviderUnavailable(f"provider {self.name!r}: {type(self.lowball).__name__} returned no ClientData")
        roles = tuple(dict.fromkeys(client.roles))
        as_groups = roles if self.config.roles_as in ("groups", "both") else ()
        as_roles = roles if self.config.roles_as in ("roles", "both") else ()
        details = client.to_dict()
        known = {k: details.get(k) for k in ("given_name", "family_name", "email", "display_name")}
        others = {k: v for k, v in details.items() if k not in {"client_id", "roles", *known}}
        try:
            return Identity(
                login=client.client_id,
                groups=as_groups,
                roles=as_roles,
                **{k: v for k, v in known.items() if isinstance(v, str)},
                attributes=others,
            )
        except ValidationError:
            raise error() from None  # a client_id authcore cannot carry (control characters, too long)

    # ------------------------------------------------------------ errors

    def _call(self, operation: str, call: Callable[[], _T], login: str | None = None) -> _T:
        """Run a lowball provider method, turning lowball's HTTP exceptions into authcore's errors."""
        try:
            return call()
        except self._http_error as exc:
            raise self._translate(exc, operation, login) from None

    def _translate(self, exc: Any, operation: str, login: str | None) -> AuthError:
        code = getattr(exc, "code", 500) or 500
        if operation == "login":
            # lowball answers a failed login with 401 or 400; the messages stay here (they may tell
            # whether a login exists).
            return InvalidCredentials() if code < 500 else ProviderUnavailable(f"provider {self.name!r} failed")
        if code == 501:
            return NotSupported(self.name, operation)
        if code == 404:
            return UserNotFound(f"no user {login!r} in provider {self.name!r}" if login else None)
        if code == 409:
            return UserExists() if operation in ("create_user", "self_register") else UserChangeRefused()
        if code in (400, 422):
            return BadRequest(f"provider {self.name!r} refused the request for {operation}")
        if code < 500:
            return UserChangeRefused()
        return ProviderUnavailable(f"provider {self.name!r} failed during {operation}")

    # ------------------------------------------------------------ provider

    def public_config(self) -> dict[str, Any]:
        """The base dict and the lowball class's name (not its configuration)."""
        return {**super().public_config(), "auth_provider": type(self.lowball).__name__}

    def health(self) -> Health:
        """lowball's ``initialized`` property."""
        try:
            ready = bool(self.lowball.initialized)
        except Exception as exc:  # health reports, it does not raise
            return Health(ok=False, detail=type(exc).__name__)
        return Health(ok=ready, detail="" if ready else "the lowball auth provider is not initialized")

    # ------------------------------------------------------------ user management

    def supported_user_operations(self) -> tuple[str, ...]:
        """The operations the lowball class overrides (lowball's base raises NotImplementedException)."""
        base = _lowball()[0]
        lowball_class = type(self.lowball)
        return tuple(
            op
            for op in self.USER_OPERATIONS
            if op in OPERATIONS and getattr(lowball_class, OPERATIONS[op][0]) is not getattr(base, OPERATIONS[op][0])
        )

    def _package(self, operation: str, model: BaseModel) -> Any:
        """The lowball package for *operation* built from *model* (a NewUser, UserUpdate…)."""
        prop = OPERATIONS[operation][1]
        assert prop is not None  # the operations that take a package all name one
        package_class = self._call(operation, lambda: getattr(self.lowball, prop))
        with self._lock:
            signature = self._signatures.get(operation)
            if signature is None:
                signature = self._signatures[operation] = Signature.of(package_class)
        kwargs = package_kwargs(model, signature, provider=self.name)
        try:
            return package_class(**kwargs)
        except Exception:
            raise BadRequest(f"provider {self.name!r} refused the data for {operation}") from None

    def _method(self, operation: str) -> Callable[..., Any]:
        if operation not in self.supported_user_operations():
            raise NotSupported(self.name, operation)
        return getattr(self.lowball, OPERATIONS[operation][0])  # type: ignore[no-any-return]

    def _user(self, client: Any, login: str | None) -> Identity:
        if client is None:
            raise UserNotFound(f"no user {login!r} in provider {self.name!r}" if login else None)
        if isinstance(client, dict) and isinstance(client.get("client_id"), str):
            client = self._client_data(client["client_id"], list(client.get("roles") or []))
        return self._identity(client, lambda: ProviderUnavailable(f"provider {self.name!r}: bad client_id"))

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """lowball's ``list_clients``, filtered by *search* (a substring of the login) and paged here."""
        clients = self._call("list_users", self._method("list_users"))
        if not isinstance(clients, list):
            raise ProviderUnavailable(f"provider {self.name!r}: list_clients returned no list")
        users = [self._user(c, None) for c in clients]
        users = [u for u in users if not search or search in u.login]
        return sorted(users, key=lambda u: u.login)[offset : offset + limit]

    def get_user(self, login: str) -> Identity:
        """lowball's ``get_client`` (``None`` or a 404 is :class:`UserNotFound`)."""
        method = self._method("get_user")
        return self._user(self._call("get_user", lambda: method(login), login), login)

    def create_user(self, user: NewUser) -> Identity:
        """lowball's ``create_client`` with its ``create_client_package_class``."""
        method = self._method("create_user")
        package = self._package("create_user", user)
        created = self._call("create_user", lambda: method(package), user.login)
        return self._user(created, user.login) if created else self.get_user(user.login)

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        """lowball's ``update_client`` with its ``update_client_package_class``."""
        method = self._method("update_user")
        package = self._package("update_user", changes)
        updated = self._call("update_user", lambda: method(package, login), login)
        return self._user(updated, login) if updated else self.get_user(login)

    def self_register(self, registration: Registration) -> Identity:
        """lowball's ``client_self_register`` with its ``client_registration_package_class``."""
        method = self._method("self_register")
        package = self._package("self_register", registration)
        created = self._call("self_register", lambda: method(package), registration.login)
        return self._user(created, registration.login) if created else self.get_user(registration.login)

    def self_update(self, login: str, changes: SelfUpdate) -> Identity:
        """lowball's ``client_self_update`` with its ``self_update_client_package_class``."""
        method = self._method("self_update")
        package = self._package("self_update", changes)
        updated = self._call("self_update", lambda: method(package, client_id=login), login)
        return self._user(updated, login) if updated else self.get_user(login)

    def _simple(self, operation: str, login: str, *args: Any) -> None:
        method = self._method(operation)
        self._call(operation, lambda: method(login, *args), login)

    def enable_user(self, login: str) -> None:
        """lowball's ``enable_client``."""
        self._simple("enable_user", login)

    def disable_user(self, login: str) -> None:
        """lowball's ``disable_client``."""
        self._simple("disable_user", login)

    def delete_user(self, login: str) -> None:
        """lowball's ``delete_client``."""
        self._simple("delete_user", login)

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        """lowball's ``add_roles``."""
        self._simple("add_roles", login, list(roles))

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        """lowball's ``delete_roles``."""
        self._simple("remove_roles", login, list(roles))
