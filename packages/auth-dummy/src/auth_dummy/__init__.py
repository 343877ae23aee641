"""auth-dummy: the development provider where the password names the permissions.

Like py-ispyb's ``DummyAuthentication``: log in as anyone, and the password (or the
token) is a comma-separated list of the permissions to grant, so ``test`` / ``Admin``
gets ``["Admin"]``. Never for production: ``production: true`` refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import Field, ValidationError

from authcore import (
    Credentials,
    Identity,
    InvalidCredentials,
    PasswordCredentials,
    Provider,
    ProviderConfig,
    TokenCredentials,
    hookimpl,
)

__all__ = ["DummyProvider", "DummyConfig"]
__version__ = "0.1.0"

log = logging.getLogger("auth_dummy")


class DummyConfig(ProviderConfig):
    """Settings of the dummy provider (all optional)."""

    token_login: str = Field(default="dummy", min_length=1, max_length=256)
    """Login given to identities that log in with a token only."""
    separator: str = Field(default=",", min_length=1, max_length=4)
    """Separator between the permissions in the password or token."""


class DummyProvider(Provider[DummyConfig]):
    """Accepts any login; the password (or token) lists the permissions, comma-separated."""

    type = "dummy"
    credential_types = (PasswordCredentials, TokenCredentials)
    development_only = True
    blocking = False  # pure computation: async hosts may run it on the event loop

    def __init__(self, name: str, config: DummyConfig) -> None:
        super().__init__(name, config)
        log.warning(
            "provider %r (dummy) accepts any login and grants what the password names: never use it in production", name
        )

    def authenticate(self, credentials: Credentials) -> Identity:
        """Grant the permissions the password or token lists."""
        config = self.config
        if isinstance(credentials, PasswordCredentials):
            login, listed = credentials.login, credentials.password.get_secret_value()
        elif isinstance(credentials, TokenCredentials):
            login, listed = config.token_login, credentials.token
        else:
            raise InvalidCredentials()
        permissions = [p.strip() for p in listed.split(config.separator) if p.strip()]
        try:
            # The groups mirror the permissions, as in py-ispyb's dummy tokens.
            return Identity(login=login, groups=tuple(permissions), permissions=permissions)
        except ValidationError:
            raise InvalidCredentials() from None


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`DummyProvider` as type ``dummy``."""
    register(DummyProvider)
