"""The ``local`` provider: password logins against users stored in the service's own database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from authcore import (
    BadRequest,
    Credentials,
    Health,
    Identity,
    InvalidCredentials,
    NewUser,
    NotSupported,
    PasswordCredentials,
    Provider,
    ProviderUnavailable,
    Registration,
    SelfUpdate,
    UserChangeRefused,
    UserManagement,
    UserUpdate,
)

from .config import LocalConfig
from .db import is_memory, make_engine, migrate
from .delivery import make_delivery
from .factor_store import FactorStore
from .fields import check_attributes, check_login, check_roles, check_text, login_key, lookup_key
from .hashing import PasswordHasher, UnknownHashFormat, hash_format
from .policy import PasswordPolicy
from .second_factor import LocalSecondFactor
from .selfservice import LocalRegistration, SelfService
from .store import PROFILE_FIELDS, UserRow

__all__ = ["LocalProvider"]

log = logging.getLogger("auth_local")

#: Text fields and their longest value (the core's package models have the same bounds).
_TEXT_LIMITS = {"given_name": 256, "family_name": 256, "email": 320, "display_name": 256}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LocalProvider(Provider[LocalConfig], UserManagement, LocalSecondFactor, SelfService):
    """Users kept by the service: SQLite or PostgreSQL, argon2id, user management, self-service, TOTP.

    ``hasher``, ``policy``, ``delivery`` and ``clock`` are plain attributes: a test may wrap
    the hasher to count verifications or move the clock on, a host may swap the policy for a
    stricter one or the delivery for its own.
    """

    type = "local"
    #: Every SQL statement of the provider: users, tokens, second factor.
    store: FactorStore
    #: Registrations may carry an invitation token (``registration: invitation``).
    registration_model = LocalRegistration

    def __init__(self, name: str, config: LocalConfig) -> None:
        super().__init__(name, config)
        self.hasher = PasswordHasher(
            time_cost=config.argon2_time_cost,
            memory_cost=config.argon2_memory_cost,
            parallelism=config.argon2_parallelism,
        )
        self.policy = PasswordPolicy(
            min_length=config.password_min_length, refuse_common=config.refuse_common_passwords
        )
        engine = make_engine(name, config)
        try:
            if config.migrate or is_memory(engine.url):  # a new memory database is always empty
                migrate(name, engine)
        except BaseException:
            engine.dispose()
            raise
        self.store = FactorStore(name, engine)
        self.delivery = make_delivery(name, config)
        self.clock = _utc_now
        self._checked = threading.local()

    def __repr__(self) -> str:
        return f"<LocalProvider name={self.name!r} type='local' database={self.store.engine.dialect.name}>"

    # ------------------------------------------------------------ logins

    def authenticate(self, credentials: Credentials) -> Identity:
        """Check a login and password; refuse unknown logins, disabled users and wrong passwords alike."""
        if not isinstance(credentials, PasswordCredentials):
            raise InvalidCredentials()
        password = credentials.password.get_secret_value()
        row = self.store.find(login_key(credentials.login))
        if row is None or row.password_hash is None or not row.enabled:
            # The same argon2 work as a wrong password costs: the time tells nothing either.
            self.hasher.verify_decoy(password)
            raise InvalidCredentials()
        try:
            matches = self.hasher.verify(row.password_hash, password)
        except UnknownHashFormat:
            log.error("provider %r: user #%d has a password hash in no supported format", self.name, row.id)
            self.hasher.verify_decoy(password)
            raise InvalidCredentials() from None
        if not matches:
            raise InvalidCredentials()
        if self.hasher.needs_update(row.password_hash):
            self._upgrade_hash(row, password)
        self._checked.row = row  # for second_factor_methods, which the manager calls next on this thread
        return self._identity(row)

    def _upgrade_hash(self, row: UserRow, password: str) -> None:
        """Rehash with the current argon2 parameters (an imported or outdated hash); best effort."""
        assert row.password_hash is not None
        try:
            self.store.replace_hash(row.id, row.password_hash, self.hasher.hash(password))
        except ProviderUnavailable as exc:  # the login stands; the next one tries again
            log.warning("provider %r: rehashing user #%d's password failed: %s", self.name, row.id, exc)

    def _identity(self, row: UserRow, *, admin: bool = False) -> Identity:
        attributes = {**row.attributes, "email_verified": row.email_verified}
        if admin:
            attributes["enabled"] = row.enabled
        return Identity(
            login=row.login,
            given_name=row.given_name,
            family_name=row.family_name,
            email=row.email,
            display_name=row.display_name,
            groups=row.roles,
            attributes=attributes,
        )

    def public_config(self) -> dict[str, Any]:
        """The base fields, whether people may register, and the minimum password length."""
        return {
            **super().public_config(),
            "registration": self.config.registration,
            "password_min_length": self.config.password_min_length,
        }

    def health(self) -> Health:
        """One query against the database."""
        try:
            self.store.ping()
        except ProviderUnavailable as exc:
            return Health(ok=False, detail=exc.message)
        return Health(ok=True, detail=self.store.engine.dialect.name)

    def close(self) -> None:
        """Close the database connections."""
        self.store.engine.dispose()

    # ------------------------------------------------------------ user management

    def supported_user_operations(self) -> tuple[str, ...]:
        """Everything; ``self_register`` only with ``registration: open`` or ``invitation``."""
        operations = super().supported_user_operations()
        if self.config.registration == "closed":
            operations = tuple(op for op in operations if op != "self_register")
        return operations

    def _profile(self, values: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                checked[name] = check_attributes(value or {})
            else:
                checked[name] = check_text(name, value, _TEXT_LIMITS[name])
        return checked

    def _new_hash(self, password: str | None, login: str) -> str | None:
        if password is None:
            return None
        self.policy.check(password, login)
        return self.hasher.hash(password)

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """Users sorted by login whose login, names or e-mail contain *search* (ignoring case)."""
        if search is not None and (len(search) > 256 or not search.isprintable()):
            raise BadRequest("search is at most 256 printable characters", status_code=422)
        rows = self.store.list(
            search_key=login_key(search) if search else None, search_text=search, limit=limit, offset=offset
        )
        return [self._identity(row, admin=True) for row in rows]

    def get_user(self, login: str) -> Identity:
        """One user, with ``attributes["enabled"]``; :class:`~authcore.UserNotFound` if absent."""
        return self._identity(self.store.get(lookup_key(login)), admin=True)

    def create_user(self, user: NewUser) -> Identity:
        """Add a user; without a password they cannot log in until one is set."""
        key = check_login(user.login)
        password = user.password.get_secret_value() if user.password is not None else None
        values = {
            "login": user.login,
            "login_key": key,
            "password_hash": self._new_hash(password, user.login),
            "enabled": user.enabled,
            **self._profile({name: getattr(user, name) for name in PROFILE_FIELDS}),
        }
        return self._identity(self.store.insert(values, check_roles(user.roles)), admin=True)

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        """Change the profile fields given in *changes* (``None`` clears a name; attributes are replaced)."""
        given = {name: getattr(changes, name) for name in changes.model_fields_set if name in PROFILE_FIELDS}
        if given.get("attributes", {}) is None:
            del given["attributes"]  # None: leave the attributes as they are
        return self._identity(self._update_profile(lookup_key(login), self._profile(given)), admin=True)

    def enable_user(self, login: str) -> None:
        """Let the user log in again."""
        self.store.update(lookup_key(login), {"enabled": True})

    def disable_user(self, login: str) -> None:
        """Refuse the user's logins (the core ends their sessions)."""
        self.store.update(lookup_key(login), {"enabled": False})

    def delete_user(self, login: str) -> None:
        """Remove the user and their roles."""
        self.store.delete(lookup_key(login))

    def set_password(self, login: str, password: str) -> None:
        """Replace the password (policy checked); :class:`~authcore.UserNotFound` if absent."""
        row = self.store.get(lookup_key(login))
        self.store.update(row.login_key, {"password_hash": self._new_hash(password, row.login)})

    def import_password_hash(self, login: str, encoded: str) -> None:
        """Store a hash made elsewhere (bcrypt, Django's or passlib's PBKDF2, argon2id) for *login*.

        The user logs in with their old password; the hash becomes argon2id at that login.
        """
        try:
            hash_format(encoded)
        except UnknownHashFormat:
            raise BadRequest("not a bcrypt, PBKDF2 or argon2id hash", status_code=422) from None
        if len(encoded) > 512 or not encoded.isascii() or not encoded.isprintable():
            raise BadRequest("not a bcrypt, PBKDF2 or argon2id hash", status_code=422)
        self.store.update(lookup_key(login), {"password_hash": encoded})

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        """Give roles (the identity's groups)."""
        self.store.add_roles(lookup_key(login), check_roles(roles))

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        """Take roles away."""
        self.store.remove_roles(lookup_key(login), check_roles(roles))

    def self_register(self, registration: Registration) -> Identity:
        """Create one's own account; it gets ``registration_roles``.

        With ``registration: invitation`` the registration carries an invitation token
        (:class:`~auth_local.selfservice.LocalRegistration`): the account gets the invited
        address (verified) and roles, and the token is spent with the account's creation.
        """
        if self.config.registration == "closed":
            raise NotSupported(self.name, "self_register")
        if self.config.registration == "invitation":
            key = check_login(registration.login)

            def columns() -> dict[str, Any]:
                return {
                    "login": registration.login,
                    "login_key": key,
                    "password_hash": self._new_hash(registration.password.get_secret_value(), registration.login),
                    "enabled": True,
                    **self._profile(
                        {
                            "given_name": registration.given_name,
                            "family_name": registration.family_name,
                            "attributes": {},
                        }
                    ),
                }

            return self._identity(self._register_invited(registration, columns))
        user = NewUser(
            login=registration.login,
            password=registration.password,
            given_name=registration.given_name,
            family_name=registration.family_name,
            email=registration.email,
            roles=self.config.registration_roles,
        )
        identity = self.create_user(user)
        return identity.model_copy(
            update={"attributes": {k: v for k, v in identity.attributes.items() if k != "enabled"}}
        )

    def self_update(self, login: str, changes: SelfUpdate) -> Identity:
        """Change one's own names and e-mail. A password change needs the current password: not here."""
        if changes.password is not None:
            raise UserChangeRefused("a password is changed with the current one, not through a profile update")
        given = {name: getattr(changes, name) for name in changes.model_fields_set if name in _TEXT_LIMITS}
        return self._identity(self._update_profile(lookup_key(login), self._profile(given)))

    def _update_profile(self, key: str, values: dict[str, Any]) -> UserRow:
        """Update; a changed e-mail address is no longer verified."""
        if "email" in values:
            current = self.store.get(key)
            if (current.email or "").lower() != (values["email"] or "").lower():
                values = {**values, "email_verified": False}
        return self.store.update(key, values)
