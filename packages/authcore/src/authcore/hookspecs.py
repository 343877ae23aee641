"""Every hook authcore calls, declared and documented in one place.

Plugins implement these with ``@authcore.hookimpl``. A provider package's entry point
(group ``authcore.providers``) is a module implementing at least
:func:`authcore_register_providers`; other extensions (permission stores, audit,
identity enrichment) live in group ``authcore.plugins`` or are registered in code with
``manager.plugins.register(obj)``.

Hooks are called with keyword arguments; an implementation may accept any subset of
the arguments listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .errors import AuthError
    from .models import Identity
    from .providers import Provider
    from .sessions import SessionStore

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME"]

PROJECT_NAME = "authcore"
#: Marks a function in this module as a hook specification.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin function as an implementation of one of these hooks.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes.

    Called when a provider module is loaded (only for types the configuration names).
    Call ``register(ProviderClass)`` once per class; the class's ``type`` attribute is
    the name configurations use and must equal the entry-point name.
    """


@hookspec
def authcore_identity_updates(identity: Identity, provider: str) -> Mapping[str, Any] | None:
    """Enrich an identity after a successful login, before permissions are computed.

    *provider* is the provider instance name. Return a mapping of
    :class:`~authcore.models.Identity` fields to change (``{"email": ...}``,
    ``{"groups": (...)}``) or ``None``. This is where py-ispyb's Person lookup and
    auto-create belong. Raise :class:`~authcore.errors.InvalidCredentials` to refuse
    the login (a user with no local record, say). Results are applied in call order.
    """


@hookspec
def authcore_permissions(identity: Identity) -> Iterable[str] | None:
    """Contribute permissions for an identity.

    Called at login, after the group mapping of the configuration has been applied.
    Return permission strings (``all_proposals``, ``contents:read``) to add, or
    ``None``. Contributions of every plugin are joined. py-ispyb's
    UserGroup/Permission tables are served through this hook by
    :class:`authcore.permission_store.SQLPermissionStore`.
    """


@hookspec
def authcore_token_claims(identity: Identity) -> Mapping[str, Any] | None:
    """Add claims to access tokens issued for *identity*.

    Return a mapping of extra claims or ``None``. Registered claims (``iss``, ``sub``,
    ``exp``, ``permissions`` and the others authcore sets) cannot be overridden: a
    plugin that tries makes the login fail with an :class:`~authcore.errors.AuthError`.
    """


@hookspec
def authcore_login_succeeded(identity: Identity, provider: str) -> None:
    """Observe a successful login (audit). Never receives a password or a token."""


@hookspec
def authcore_login_failed(provider: str, login: str | None, error: AuthError) -> None:
    """Observe a failed login (audit, throttling). *login* is what was typed, or ``None``."""


@hookspec
def authcore_logout(session_id: str, login: str) -> None:
    """Observe a logout: the session *session_id* has been revoked."""


@hookspec(firstresult=True)
def authcore_session_store(url: str) -> SessionStore | None:
    """Provide a session store for a ``sessions.store`` URL whose scheme authcore does not know.

    Return a :class:`~authcore.sessions.SessionStore` for *url*, or ``None`` if the
    scheme is not yours. The first non-``None`` result wins.
    """
