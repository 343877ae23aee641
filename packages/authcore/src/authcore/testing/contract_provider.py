"""The provider and configuration behind the HTTP contract suite (:mod:`.web_contract`).

:class:`ContractProvider` keeps users in memory with every user-management operation, and single
sign-on whose "identity provider" is itself (the authorization URL carries the code it will
accept), so the suite needs no network and no other package.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from ..capabilities import (
    AuthorizationRequest,
    NewUser,
    Registration,
    SelfUpdate,
    SingleSignOn,
    UserManagement,
    UserUpdate,
)
from ..errors import InvalidCredentials, UserExists, UserNotFound
from ..models import Identity
from ..providers import AuthorizationCodeCredentials, Credentials, PasswordCredentials, Provider, ProviderConfig
from .contract_second_factor import ContractSecondFactor
from .contract_self_service import ContractSelfService

__all__ = ["CONTRACT_SECRET", "ContractConfig", "ContractProvider", "contract_config"]

CONTRACT_SECRET = "web-contract-secret-" + "c" * 44


class ContractConfig(ProviderConfig):
    """Initial users (login → password) and their roles."""

    users: dict[str, str] = Field(
        default_factory=lambda: {"alice": "wonderland", "admin": "adminpw", "eve": "evepw", "tess": "tesspw"}
    )
    roles: dict[str, list[str]] = Field(default_factory=lambda: {"admin": ["admin"], "alice": ["staff"]})
    #: Logins that must enrol a second factor (:class:`.contract_second_factor.ContractSecondFactor`).
    second_factor_required: list[str] = Field(default_factory=lambda: ["tess"])


class ContractProvider(
    Provider[ContractConfig], UserManagement, SingleSignOn, ContractSecondFactor, ContractSelfService
):
    """Users in memory with every user-management operation, and single sign-on whose "identity
    provider" is this object: the authorization URL carries the code it will accept."""

    type = "contract"
    credential_types = (PasswordCredentials, AuthorizationCodeCredentials)

    def __init__(self, name: str, config: ContractConfig) -> None:
        super().__init__(name, config)
        self.passwords: dict[str, str] = dict(config.users)
        self.roles: dict[str, list[str]] = {login: list(config.roles.get(login, [])) for login in config.users}
        self.disabled: set[str] = set()
        self.pending: dict[str, AuthorizationRequest] = {}
        self.required = frozenset(config.second_factor_required)

    def authenticate(self, credentials: Credentials) -> Identity:
        """Password or authorization code (with the verifier and nonce it was issued for)."""
        if isinstance(credentials, AuthorizationCodeCredentials):
            pending = self.pending.pop(credentials.code, None)
            if pending is None or (credentials.code_verifier, credentials.nonce) != (
                pending.code_verifier,
                pending.nonce,
            ):
                raise InvalidCredentials()
            return Identity(login="sso-user", groups=("staff",))
        assert isinstance(credentials, PasswordCredentials)
        known = self.passwords.get(credentials.login, "\x00decoy")
        if not secrets.compare_digest(known.encode(), credentials.password.get_secret_value().encode()):
            raise InvalidCredentials()
        if credentials.login in self.disabled:
            raise InvalidCredentials()
        return self.get_user(credentials.login)

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A request whose URL names the code the callback may bring back."""
        state, nonce, verifier, code = (secrets.token_urlsafe(16) for _ in range(4))
        url = f"https://idp.invalid/authorize?state={state}&code={code}"
        self.pending[code] = AuthorizationRequest(url, state, nonce, verifier, redirect_uri)
        return self.pending[code]

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """The users, sorted."""
        found = sorted(u for u in self.passwords if not search or search in u)[offset:][:limit]
        return [self.get_user(u) for u in found]

    def get_user(self, login: str) -> Identity:
        """One user."""
        if login not in self.passwords:
            raise UserNotFound()
        return Identity(login=login, groups=tuple(self.roles[login]))

    def create_user(self, user: NewUser) -> Identity:
        """Add a user."""
        if user.login in self.passwords:
            raise UserExists()
        self.passwords[user.login] = user.password.get_secret_value() if user.password else secrets.token_hex(8)
        self.roles[user.login] = list(user.roles)
        return self.get_user(user.login)

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        """Nothing to store beyond roles: the user as is."""
        return self.get_user(login)

    def enable_user(self, login: str) -> None:
        """Allow logins again."""
        self.get_user(login)
        self.disabled.discard(login)

    def disable_user(self, login: str) -> None:
        """Refuse logins."""
        self.get_user(login)
        self.disabled.add(login)

    def delete_user(self, login: str) -> None:
        """Remove a user."""
        self.get_user(login)
        del self.passwords[login], self.roles[login]

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        """Add roles."""
        self.get_user(login)
        self.roles[login] = sorted({*self.roles[login], *roles})

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        """Remove roles."""
        self.get_user(login)
        self.roles[login] = [r for r in self.roles[login] if r not in roles]

    def self_register(self, registration: Registration) -> Identity:
        """Anyone may register."""
        return self.create_user(NewUser(login=registration.login, password=registration.password))

    def self_update(self, login: str, changes: SelfUpdate) -> Identity:
        """A new password, if given."""
        self.get_user(login)
        if changes.password is not None:
            self.passwords[login] = changes.password.get_secret_value()
        return self.get_user(login)


def contract_config(**tokens: Any) -> dict[str, Any]:
    """The core's configuration for the suite; *tokens* adds to its ``tokens`` section."""
    return {
        "tokens": {"secret": CONTRACT_SECRET, **tokens},
        "providers": [{"name": "contract", "class": f"{__name__}:ContractProvider"}],
        "permissions": {"groups": {"admin": ["users:admin", "read"], "staff": ["read"]}},
    }
