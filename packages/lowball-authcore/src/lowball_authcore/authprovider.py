"""authcore as a lowball auth provider: :class:`AuthcoreAuthProvider`.

A lowball service keeps its own tokens and routes; this class is what it passes as
``Lowball(config=..., auth_provider=AuthcoreAuthProvider)``. lowball builds it from the
``auth_provider:`` section of its configuration::

    auth_provider:
      config: /etc/my-service/authcore.yml   # or manager: an AuthManager, from code
      provider: site-ldap                    # the authcore provider instance logins go to
      roles_from: permissions                # lowball roles: authcore permissions (or groups, both)

Logins (``POST /builtins/auth`` with ``username``/``login`` and ``password``, or ``token``)
go through authcore's whole login (input checks, provider, plugins, permissions); the
client's lowball roles are the identity's permissions. lowball's client routes are
mapped onto authcore's :class:`~authcore.capabilities.UserManagement`; what the provider
does not support answers lowball's 501. This module imports lowball.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from lowball.exceptions import (  # type: ignore[import-untyped]
    BadRequestException,
    InadequateRolesException,
    InvalidCredentialsException,
    LowballException,
    MalformedProviderPackageException,
    NotFoundException,
    NotImplementedException,
)
from lowball.models.authentication_models import ClientData  # type: ignore[import-untyped]
from lowball.models.provider_models.auth_provider import AuthPackage, AuthProvider  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from authcore import AuthManager, Identity
from authcore import permissions as _permissions
from authcore.capabilities import UserManagement
from authcore.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    Forbidden,
    InvalidCredentials,
    NotSupported,
    UnknownProvider,
    UserChangeRefused,
    UserExists,
    UserNotFound,
)

__all__ = ["AuthcoreAuthProvider", "AuthcoreAuthPackage", "AuthcoreClientData", "ProviderUnavailableException"]

_T = TypeVar("_T")
RolesFrom = Literal["permissions", "groups", "both"]
#: How many users one ``list_users`` call asks for while ``list_clients`` collects them all.
_PAGE = 500


class ProviderUnavailableException(LowballException):  # type: ignore[misc]
    """The identity source behind authcore cannot answer (503)."""

    code = 503
    description = "The Identity Provider Is Unavailable"


class ConflictException(LowballException):  # type: ignore[misc]
    """The user exists already, or the provider refused the change (409)."""

    code = 409

    def __init__(self, description: str, additional_log_data: Any = None) -> None:
        super().__init__(additional_log_data)
        self.description = description


def _text(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a string")  # the type, never the value: it may be a password


class AuthcoreAuthPackage(AuthPackage):  # type: ignore[misc]
    """The body of ``POST /builtins/auth``: ``username`` (or ``login``) and ``password``, or ``token``;
    ``plugin`` picks among the providers the service allows (py-ispyb's name for it).

    Values are checked by authcore when the login runs; here only their types, and the
    repr shows the login alone.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        plugin: str | None = None,
        login: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            # Names only (a body's keys are the caller's own), truncated: they go to lowball's log.
            raise TypeError(f"unexpected fields: {', '.join(sorted(repr(k[:40]) for k in kwargs)[:5])}")
        super().__init__()
        username, login = _text("username", username), _text("login", login)
        if username is not None and login is not None and username != login:
            raise TypeError("give username or login, not two different ones")
        self.login = login if login is not None else username
        self.password = _text("password", password)
        self.token = _text("token", token)
        self.plugin = _text("plugin", plugin)

    def __repr__(self) -> str:
        return f"AuthcoreAuthPackage(login={self.login!r}, plugin={self.plugin!r})"


class AuthcoreClientData(ClientData):  # type: ignore[misc]
    """lowball's ``ClientData`` with the identity's names and e-mail address in ``to_dict()``."""

    def __init__(self, client_id: str, roles: list[str], identity: Identity | None = None, **kwargs: Any) -> None:
        super().__init__(client_id, roles, **kwargs)
        self.identity = identity

    def to_dict(self) -> dict[str, Any]:
        """``client_id`` and ``roles``, and the identity's name fields that are set."""
        data: dict[str, Any] = super().to_dict()
        if self.identity is not None:
            for name in ("given_name", "family_name", "email", "display_name"):
                value = getattr(self.identity, name)
                if value is not None:
                    data[name] = value
        return data


def _lowball_error(exc: AuthError) -> LowballException:
    """The lowball exception (and so the HTTP status lowball answers) for an authcore error."""
    log_data = {"authcore_error": exc.code}  # lowball logs this; authcore's codes hold no input
    if isinstance(exc, InvalidCredentials):
        return InvalidCredentialsException(log_data)
    if isinstance(exc, NotSupported):
        return NotImplementedException(exc.operation, log_data)
    if isinstance(exc, UserNotFound):
        return NotFoundException("client not found", log_data)
    if isinstance(exc, UserExists | UserChangeRefused):
        return ConflictException(exc.message, log_data)
    if isinstance(exc, UnknownProvider):
        return BadRequestException("unknown plugin", log_data)
    if isinstance(exc, BadRequest):
        return MalformedProviderPackageException(log_data)
    if isinstance(exc, Forbidden):
        return InadequateRolesException(log_data)
    if exc.status_code == 503:
        return ProviderUnavailableException(log_data)
    return LowballException(log_data)


class AuthcoreAuthProvider(AuthProvider):  # type: ignore[misc]
    """A lowball auth provider backed by an :class:`authcore.AuthManager`.

    *config*: an authcore YAML file (or give *manager*, one built in code; the provider then
    does not own it). *provider*: the authcore provider instance logins go to (default: the
    only one enabled). *providers*: the instances a login body's ``plugin`` may pick (default:
    *provider* alone). *roles_from*: what becomes a client's lowball roles.
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | None = None,
        manager: AuthManager | None = None,
        provider: str | None = None,
        providers: Iterable[str] | None = None,
        roles_from: RolesFrom = "permissions",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (config is None) == (manager is None):
            raise ConfigError("AuthcoreAuthProvider: give config (a YAML path) or manager, exactly one")
        if roles_from not in ("permissions", "groups", "both"):
            raise ConfigError("AuthcoreAuthProvider: roles_from is permissions, groups or both")
        self.manager = manager if manager is not None else AuthManager.from_file(config)  # type: ignore[arg-type]
        enabled = sorted(self.manager.providers)
        if provider is None:
            if len(enabled) != 1:
                raise ConfigError(f"AuthcoreAuthProvider: name the provider logins use (enabled: {', '.join(enabled)})")
            provider = enabled[0]
        self.provider = provider
        self.providers = tuple(dict.fromkeys([provider, *(providers or ())]))
        for name in self.providers:
            self.manager.provider(name)  # UnknownProvider (a ConfigError) names the enabled ones
        self.roles_from: RolesFrom = roles_from

    def __repr__(self) -> str:
        return f"<AuthcoreAuthProvider provider={self.provider!r} {self.manager!r}>"

    # ------------------------------------------------------------ login

    @property
    def auth_package_class(self) -> type[AuthcoreAuthPackage]:
        """The body of a login: :class:`AuthcoreAuthPackage`."""
        return AuthcoreAuthPackage

    @property
    def initialized(self) -> bool:
        """Whether every provider logins may use answers (authcore's ``health()``)."""
        health = self.manager.health()
        return all(health[name].ok for name in self.providers)

    def authenticate(self, auth_package: AuthcoreAuthPackage) -> ClientData:
        """Log in through authcore; the client's roles are the identity's permissions (see *roles_from*).

        authcore's session is ended at once: lowball issues and keeps its own tokens.
        """
        if not isinstance(auth_package, AuthcoreAuthPackage):
            raise InvalidCredentialsException()
        plugin = auth_package.plugin if auth_package.plugin is not None else self.provider
        if plugin not in self.providers:
            raise BadRequestException("unknown plugin")
        result = self._run(
            lambda: self.manager.login(
                plugin, login=auth_package.login, password=auth_package.password, token=auth_package.token
            )
        )
        self._run(lambda: self.manager.logout(result.refresh_token))
        return self._client(result.identity)

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _run(call: Callable[[], _T]) -> _T:
        try:
            return call()
        except AuthError as exc:
            raise _lowball_error(exc) from None

    def _roles(self, identity: Identity) -> list[str]:
        granted = set(identity.permissions)
        if not granted and self.roles_from != "groups":
            # Identities from user management carry no permissions: map their groups as a login does.
            config = self.manager.config.permissions
            granted.update(_permissions.normalize(config.authenticated))
            for group in (*identity.groups, *identity.roles):
                granted.update(_permissions.normalize(config.groups.get(group, ())))
        groups = {*identity.groups, *identity.roles}
        chosen = {"permissions": granted, "groups": groups, "both": granted | groups}[self.roles_from]
        return sorted(chosen)

    def _client(self, identity: Identity) -> AuthcoreClientData:
        return AuthcoreClientData(identity.login, self._roles(identity), identity=identity)

    def _users(self) -> UserManagement:
        return self._run(lambda: self.manager.users(self.provider))

    def _package_class(self, operation: str, model: type[BaseModel]) -> type[Any]:
        if operation not in self._users().supported_user_operations():
            raise NotImplementedException(operation)
        return _model_package(model)

    # ------------------------------------------------------------ client management

    @property
    def create_client_package_class(self) -> type[Any]:
        """A package validated by the provider's ``NewUser`` model (``client_id`` is accepted for ``login``)."""
        return self._package_class("create_user", self._users().new_user_model)

    @property
    def client_registration_package_class(self) -> type[Any]:
        """A package validated by the provider's ``Registration`` model."""
        return self._package_class("self_register", self._users().registration_model)

    @property
    def update_client_package_class(self) -> type[Any]:
        """A package validated by the provider's ``UserUpdate`` model."""
        return self._package_class("update_user", self._users().user_update_model)

    @property
    def self_update_client_package_class(self) -> type[Any]:
        """A package validated by the provider's ``SelfUpdate`` model."""
        return self._package_class("self_update", self._users().self_update_model)

    def get_client(self, client_id: str) -> AuthcoreClientData | None:
        """The user, or ``None`` (lowball's routes answer 404)."""
        users = self._users()
        try:
            return self._client(users.get_user(client_id))
        except UserNotFound:
            return None
        except AuthError as exc:
            raise _lowball_error(exc) from None

    def create_client(self, package: Any) -> AuthcoreClientData:
        """authcore's ``create_user``."""
        users = self._users()
        return self._client(self._run(lambda: users.create_user(package.model)))

    def client_self_register(self, package: Any) -> AuthcoreClientData:
        """authcore's ``self_register``."""
        users = self._users()
        return self._client(self._run(lambda: users.self_register(package.model)))

    def update_client(self, package: Any, client_id: str) -> AuthcoreClientData:
        """authcore's ``update_user``."""
        users = self._users()
        return self._client(self._run(lambda: users.update_user(client_id, package.model)))

    def client_self_update(self, package: Any, client_id: str) -> AuthcoreClientData:
        """authcore's ``self_update`` for the client the token names."""
        users = self._users()
        return self._client(self._run(lambda: users.self_update(client_id, package.model)))

    def enable_client(self, client_id: str) -> None:
        """authcore's ``enable_user``."""
        users = self._users()
        self._run(lambda: users.enable_user(client_id))

    def disable_client(self, client_id: str) -> None:
        """authcore's ``disable_user``."""
        users = self._users()
        self._run(lambda: users.disable_user(client_id))

    def delete_client(self, client_id: str) -> None:
        """authcore's ``delete_user``."""
        users = self._users()
        self._run(lambda: users.delete_user(client_id))

    def add_roles(self, client_id: str, roles: list[str]) -> None:
        """authcore's ``add_roles`` (roles or group memberships, as the provider has them)."""
        users = self._users()
        self._run(lambda: users.add_roles(client_id, roles))

    def delete_roles(self, client_id: str, roles: list[str]) -> None:
        """authcore's ``remove_roles``.

        lowball's ``DELETE /clients/<id>/roles`` passes the roles :meth:`get_client` gave, which are
        permissions here (see *roles_from*), not the provider's roles: asked to remove exactly those,
        every role the provider holds for the client goes, as lowball means.
        """
        users = self._users()
        found = self._run(lambda: users.get_user(client_id))
        if sorted(roles) == self._roles(found):
            roles = list(found.roles)
        self._run(lambda: users.remove_roles(client_id, roles))

    def list_clients(self) -> list[AuthcoreClientData]:
        """Every user, collected page by page through authcore's ``list_users``."""
        users = self._users()
        found: list[Identity] = []
        while True:
            offset = len(found)
            page = self._run(lambda: users.list_users(limit=_PAGE, offset=offset))  # noqa: B023 (called at once)
            found += page
            if len(page) < _PAGE:
                return [self._client(identity) for identity in found]


_PACKAGES: dict[type[BaseModel], type[Any]] = {}


def _model_package(model: type[BaseModel]) -> type[Any]:
    """A lowball package class (``**body`` in, ``.model`` out) validated by the pydantic *model*."""
    cached = _PACKAGES.get(model)
    if cached is not None:
        return cached

    def __init__(self: Any, **body: Any) -> None:
        if "client_id" in body and "login" in model.model_fields:
            body.setdefault("login", body.pop("client_id"))
        try:
            self.model = model.model_validate(body)
        except ValidationError as exc:
            # Field names and error kinds only: the models hide the input in their errors.
            raise ValueError(f"invalid {', '.join(_locations(exc.errors()))}") from None

    package = type(f"{model.__name__}Package", (), {"__init__": __init__, "__repr__": lambda self: "<package>"})
    _PACKAGES[model] = package
    return package


def _locations(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({".".join(str(part) for part in error.get("loc", ())) or "body" for error in errors})
