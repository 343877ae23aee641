"""auth-static: users with PBKDF2-SHA256 password hashes listed in the configuration.

An example of a third-party provider package built on authcore's public API only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from authcore import Credentials, Identity, InvalidCredentials, PasswordCredentials, Provider, ProviderConfig, hookimpl
from authcore.capabilities import UserManagement
from authcore.errors import UserNotFound

__all__ = ["StaticProvider", "StaticConfig", "StaticUser", "hash_password"]
__version__ = "0.1.0"

_ITERATIONS = 600_000


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    """A ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` string for *password*."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _check(password: str, encoded: str) -> bool:
    scheme, iterations, salt, expected = encoded.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return scheme == "pbkdf2_sha256" and hmac.compare_digest(digest.hex(), expected)


class StaticUser(BaseModel):
    """One configured user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    password_hash: str = Field(pattern=r"^pbkdf2_sha256\$\d{4,7}\$[0-9a-f]{32}\$[0-9a-f]{64}$")
    """``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` (see :func:`hash_password`)."""
    given_name: str | None = None
    """Given name."""
    family_name: str | None = None
    """Family name."""
    email: str | None = None
    """E-mail address."""
    groups: tuple[str, ...] = ()
    """Groups; the core maps them to permissions."""
    enabled: bool = True
    """A disabled user cannot log in."""


class StaticConfig(ProviderConfig):
    """Settings of the static provider."""

    users: dict[str, StaticUser] = Field(default_factory=dict)
    """Login → user."""


# A hash of a random password: unknown logins are checked against it so that they take
# as long as known ones (the timing does not tell whether a login exists).
_DECOY = hash_password(secrets.token_hex(16))


class StaticProvider(Provider[StaticConfig], UserManagement):
    """Users from the configuration; read-only user management (the optional part: leave it out, and
    ``UserManagement`` from the bases, and the provider still passes the conformance suite)."""

    type = "static"  # the entry-point name; the settings model comes from Provider[StaticConfig]

    def authenticate(self, credentials: Credentials) -> Identity:
        """Check the password against the configured hash."""
        if not isinstance(credentials, PasswordCredentials):
            raise InvalidCredentials()
        user = self.config.users.get(credentials.login)
        ok = _check(credentials.password.get_secret_value(), user.password_hash if user else _DECOY)
        if user is None or not ok or not user.enabled:
            raise InvalidCredentials()
        return self._identity(credentials.login, user)

    @staticmethod
    def _identity(login: str, user: StaticUser) -> Identity:
        return Identity(
            login=login,
            given_name=user.given_name,
            family_name=user.family_name,
            email=user.email,
            groups=user.groups,
        )

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """Configured users whose login contains *search*."""
        logins = sorted(login for login in self.config.users if not search or search in login)
        return [self._identity(login, self.config.users[login]) for login in logins[offset : offset + limit]]

    def get_user(self, login: str) -> Identity:
        """One configured user."""
        user = self.config.users.get(login)
        if user is None:
            raise UserNotFound(f"no user {login!r} in provider {self.name!r}")
        return self._identity(login, user)


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`StaticProvider` as type ``static``."""
    register(StaticProvider)
