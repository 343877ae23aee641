"""From a login request to an identity with its permissions.

The first half of a login, in the order it runs: the credential package is built from
what the request offered (:func:`credentials_for`), the provider checks it, plugins update
the identity, and the permissions are worked out (:class:`Identities`). What follows, the
session and the tokens, is :class:`~authcore.manager.AuthManager`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pluggy
from pydantic import ValidationError

from . import permissions as _permissions
from .config.schema import PermissionsConfig
from .errors import AuthError, InvalidCredentials, ProviderUnavailable
from .models import Identity
from .providers import (
    AnonymousCredentials,
    AuthorizationCodeCredentials,
    Credentials,
    PasswordCredentials,
    Provider,
    TokenCredentials,
)

__all__ = ["Identities", "call_hook", "credentials_for", "granted_of", "printable", "restore", "snapshot"]

log = logging.getLogger("authcore")


def credentials_for(
    provider: Provider,
    *,
    login: str | None = None,
    password: str | None = None,
    token: str | None = None,
    code: str | None = None,
    redirect_uri: str | None = None,
    code_verifier: str | None = None,
    nonce: str | None = None,
    issuer: str | None = None,
) -> Credentials:
    """The credential package *provider* accepts, built from what a login request offered.

    When several kinds are offered (py-ispyb's client sends password and token), the first
    kind in ``provider.credential_types`` wins. Bad input raises :class:`InvalidCredentials`
    before the provider sees it, as does an offer of no kind the provider accepts.
    """
    offered: list[tuple[type[Credentials], dict[str, Any]]] = []
    if code is not None or redirect_uri is not None:
        values = {
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "nonce": nonce,
            "issuer": issuer,
        }
        offered.append((AuthorizationCodeCredentials, values))
    if login is not None or password is not None:
        offered.append((PasswordCredentials, {"login": login, "password": password}))
    if token is not None:
        offered.append((TokenCredentials, {"token": token}))
    if not offered:
        offered.append((AnonymousCredentials, {}))
    for kind in provider.credential_types:
        for offered_kind, values in offered:
            if issubclass(kind, offered_kind):
                try:
                    return kind.model_validate(values)
                except (ValidationError, TypeError):
                    raise InvalidCredentials() from None
    raise _wrong_kind(provider)


def printable(value: str | None) -> str | None:
    """*value* as a login hooks may see: short, printable, else ``None``."""
    if value is None or not isinstance(value, str):
        return None
    return value[:256] if value.isprintable() else None


def snapshot(identity: Identity, granted: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What a session keeps of *identity*: its JSON form plus the provider's ``session_state``.

    *granted* are the permissions the provider (and identity plugins) gave before the group
    mapping and permission plugins added theirs: a refresh starts again from them, so a
    permission whose group was taken away upstream, or whose mapping left the configuration,
    goes away too.
    """
    data = identity.model_dump(mode="json")
    data["session_state"] = identity.session_state
    if granted is not None:
        data[_GRANTED] = list(granted)
    return data


def granted_of(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The provider's own permissions a session kept (see :func:`snapshot`); ``None`` if it kept none."""
    granted = data.get(_GRANTED)
    return tuple(granted) if isinstance(granted, list) else None


def restore(data: Mapping[str, Any]) -> Identity:
    """The identity a session kept (the inverse of :func:`snapshot`)."""
    return Identity.model_validate({k: v for k, v in data.items() if k not in _KEPT_BESIDE})


_GRANTED = "provider_permissions"
#: What a pending login keeps beside its identity (:mod:`authcore.second_factor`).
PENDING_SECOND_FACTOR = "second_factor_pending"
_KEPT_BESIDE = frozenset({_GRANTED, PENDING_SECOND_FACTOR})


def call_hook(plugins: pluggy.PluginManager, name: str, **kwargs: Any) -> list[Any]:
    """Call hook *name*; skip pluggy's call machinery when no plugin implements it."""
    caller = getattr(plugins.hook, name)
    return caller(**kwargs) if caller.get_hookimpls() else []


def _wrong_kind(provider: Provider) -> InvalidCredentials:
    kinds = ", ".join(k.kind for k in provider.credential_types)
    return InvalidCredentials(f"provider {provider.name!r} accepts: {kinds}")


class Identities:
    """Turns checked credentials into an identity with its permissions: the provider, then the plugins.

    Permissions are the identity's own, the ``permissions.authenticated`` ones, those of
    its groups and roles in ``permissions.groups``, and what ``authcore_permissions`` hooks add.
    """

    def __init__(self, plugins: pluggy.PluginManager, config: PermissionsConfig) -> None:
        self._plugins = plugins
        self._group_permissions = {group: _permissions.normalize(perms) for group, perms in config.groups.items()}
        self._default_permissions = _permissions.normalize(config.authenticated)

    def identify(self, provider: Provider, credentials: Credentials) -> tuple[Identity, tuple[str, ...]]:
        """Have *provider* check *credentials*; return the identity, updated by plugins, with its permissions,
        and the permissions it had before the group mapping and permission plugins (see :func:`snapshot`).

        Raises :class:`InvalidCredentials` with one message whatever the provider or a plugin
        said, and :class:`ProviderUnavailable` for a provider that failed unexpectedly.
        """
        if not isinstance(credentials, provider.credential_types):
            raise _wrong_kind(provider)
        try:
            identity = provider.authenticate(credentials)
        except InvalidCredentials:
            # One message whatever the provider said: errors never tell whether a login exists.
            raise InvalidCredentials() from None
        except AuthError:
            raise
        except Exception as exc:
            # Unexpected provider failures: the type is logged, the message is not (it may hold input).
            log.error("provider %r failed during login: %s", provider.name, type(exc).__name__)
            raise ProviderUnavailable(f"provider {provider.name!r} failed") from exc
        return self.finish(provider, identity)

    def finish(self, provider: Provider, identity: object) -> tuple[Identity, tuple[str, ...]]:
        """The second half of :meth:`identify`, for an identity *provider* vouched for otherwise
        (a second factor's check): plugins update it, its permissions are worked out."""
        if not isinstance(identity, Identity):
            raise ProviderUnavailable(f"provider {provider.name!r} returned no identity")
        if not self._has_impls("authcore_identity_updates", "authcore_permissions"):
            # No plugin looks at the identity: one copy instead of two (logins are a hot path).
            permissions = self.permissions_for(identity)
            return identity.model_copy(
                update={"provider": provider.name, "permissions": permissions}
            ), identity.permissions
        identity = identity.model_copy(update={"provider": provider.name})
        try:
            results = call_hook(self._plugins, "authcore_identity_updates", identity=identity, provider=provider.name)
            for updates in reversed(results):
                if updates:
                    identity = Identity.model_validate({**snapshot(identity), **dict(updates)})
        except InvalidCredentials:
            raise InvalidCredentials() from None  # a plugin's refusal says no more than a provider's
        return identity.model_copy(update={"permissions": self.permissions_for(identity)}), identity.permissions

    def permissions_for(self, identity: Identity) -> tuple[str, ...]:
        """Every permission *identity* holds, sorted (see the class docstring for the sources)."""
        granted: set[str] = {*identity.permissions, *self._default_permissions}
        for group in (*identity.groups, *identity.roles):
            granted.update(self._group_permissions.get(group, ()))
        for contribution in call_hook(self._plugins, "authcore_permissions", identity=identity):
            if contribution:
                granted.update(_permissions.normalize(list(contribution)))
        return tuple(sorted(granted))

    def _has_impls(self, *names: str) -> bool:
        return any(getattr(self._plugins.hook, name).get_hookimpls() for name in names)
