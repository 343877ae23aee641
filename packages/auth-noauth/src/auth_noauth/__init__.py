"""auth-noauth: no authentication at all, like Jupyverse's ``fps-noauth``.

Every login, with or without credentials, is one anonymous user holding every
permission (``*``). For a personal machine only: ``production: true`` refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import Field

from authcore import (
    AnonymousCredentials,
    Credentials,
    Identity,
    PasswordCredentials,
    Provider,
    ProviderConfig,
    TokenCredentials,
    hookimpl,
)

__all__ = ["NoAuthProvider", "NoAuthConfig"]
__version__ = "0.1.0"

log = logging.getLogger("auth_noauth")


class NoAuthConfig(ProviderConfig):
    """Settings of the noauth provider."""

    login: str = Field(default="anonymous", min_length=1, max_length=256)
    """The login every caller gets."""
    display_name: str = Field(default="Anonymous", max_length=256)
    """Display name of that user."""


class NoAuthProvider(Provider[NoAuthConfig]):
    """Everyone is the same anonymous user with every permission."""

    type = "noauth"
    credential_types = (
        AnonymousCredentials,
        PasswordCredentials,
        TokenCredentials,
    )
    development_only = True
    blocking = False  # pure computation: async hosts may run it on the event loop

    def __init__(self, name: str, config: NoAuthConfig) -> None:
        super().__init__(name, config)
        log.warning("provider %r (noauth) lets everyone in with every permission: never use it in production", name)

    def authenticate(self, credentials: Credentials) -> Identity:
        """Return the anonymous user, whatever the credentials."""
        return Identity(login=self.config.login, display_name=self.config.display_name, permissions=("*",))


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`NoAuthProvider` as type ``noauth``."""
    register(NoAuthProvider)
