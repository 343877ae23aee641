"""Self-service flows of the ``local`` provider: password change and reset, e-mail verification, invitations.

A mixin of :class:`~auth_local.provider.LocalProvider` (which supplies the store, hasher,
policy, delivery and clock). Tokens are made and checked in :mod:`auth_local.tokens`; they
reach people only through the configured :mod:`~auth_local.delivery` and never appear in a
return value, a log line, an exception or a repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import Connection

from authcore import (
    BadRequest,
    InvalidCredentials,
    InvalidToken,
    Invitations,
    PasswordSelfService,
    ProviderUnavailable,
    Registration,
    UserNotFound,
)
from authcore.providers import MAX_LOGIN_LENGTH

from .config import LocalConfig
from .delivery import Delivery
from .fields import check_roles, login_key
from .hashing import PasswordHasher, UnknownHashFormat
from .policy import PasswordPolicy
from .store import UserRow
from .tokens import AccountStore, Purpose, new_token, token_hash, well_formed

__all__ = ["SelfService", "LocalRegistration", "TOKEN_REFUSED"]

log = logging.getLogger("auth_local")

#: The one message for a token that is unknown, used, expired or malformed.
TOKEN_REFUSED = "the link is invalid or has expired"
#: A reset request names at most this many accounts by a shared e-mail address.
_MAX_ACCOUNTS_PER_ADDRESS = 10


def _duration(ttl: timedelta) -> str:
    """*ttl* for a reader: "30 minutes", "2 days"."""
    seconds = int(ttl.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


class LocalRegistration(Registration):
    """A self-registration; with ``registration: invitation`` it carries the invitation token."""

    invitation: str | None = Field(default=None, max_length=64, repr=False)


def plausible_address(email: object) -> bool:
    """Whether *email* may be an address to send to (printable, one ``@``, no spaces, at most 320)."""
    return (
        isinstance(email, str)
        and 3 <= len(email) <= 320
        and email.isprintable()
        and not any(c.isspace() for c in email)
        and email.count("@") == 1
        and not email.startswith("@")
        and not email.endswith("@")
    )


class SelfService(PasswordSelfService, Invitations):
    """The core's :class:`~authcore.PasswordSelfService` plus invitations, for the ``local`` provider."""

    name: str
    config: LocalConfig
    hasher: PasswordHasher
    policy: PasswordPolicy
    delivery: Delivery
    #: The current time (UTC); a test moves it forward to expire tokens without waiting.
    clock: Callable[[], datetime]

    if TYPE_CHECKING:  # provided by LocalProvider (read-only here: its store is a subclass)

        @property
        def store(self) -> AccountStore: ...

    # ------------------------------------------------------------ helpers

    def _send_token(
        self, *, to: str, purpose: Purpose, subject: str, intro: str, template: str | None, ttl: timedelta,
        token: str, user_id: int | None = None, roles: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """Store *token*'s hash, deliver it, and on success void the user's older ones of *purpose*.

        A failed delivery removes the new token (nothing is left half-issued) and raises
        :class:`~authcore.ProviderUnavailable`; the older tokens then still work.
        """
        now = self.clock()
        token_id = self.store.issue_token(
            purpose=purpose, digest=token_hash(token), expires_at=now + ttl, now=now,
            user_id=user_id, email=to, roles=roles,
        )  # fmt: skip
        link = template.replace("{token}", token) if template else token
        text = f"{intro}\n\n{link}\n\nThis link works once, within {_duration(ttl)}.\n"
        try:
            self.delivery.send(to, subject, text)
        except ProviderUnavailable as exc:
            self.store.discard_token(token_id)
            raise ProviderUnavailable(f"provider {self.name!r}: the message was not sent: {exc.message}") from None
        if user_id is not None:
            self.store.void_tokens(user_id, purpose, now, keep=token_id)

    def _reset_targets(self, login_or_email: str) -> list[UserRow]:
        # Both lookups always run (when the text could be either), whoever exists.
        by_login = None
        if len(login_or_email) <= MAX_LOGIN_LENGTH:
            by_login = self.store.find(login_key(login_or_email))
        by_email = (
            self.store.find_by_email(login_or_email, limit=_MAX_ACCOUNTS_PER_ADDRESS) if "@" in login_or_email else []
        )
        rows = [by_login] if by_login is not None else by_email
        return [row for row in rows if row.enabled and row.email and plausible_address(row.email)]

    # ------------------------------------------------------------ passwords

    def change_password(self, login: str, current_password: str, new_password: str) -> None:
        """Check the current password as a login would, apply the policy, store the new hash.

        Outstanding reset tokens of the user are voided. Unknown, disabled and wrong alike:
        :class:`~authcore.InvalidCredentials` after the same argon2 work.
        """
        if not isinstance(current_password, str) or not isinstance(new_password, str):
            raise InvalidCredentials()
        row = None
        if isinstance(login, str) and 1 <= len(login) <= MAX_LOGIN_LENGTH and login.isprintable():
            row = self.store.find(login_key(login))
        if row is None or row.password_hash is None or not row.enabled:
            self.hasher.verify_decoy(current_password)
            raise InvalidCredentials()
        try:
            matches = self.hasher.verify(row.password_hash, current_password)
        except UnknownHashFormat:
            self.hasher.verify_decoy(current_password)
            matches = False
        if not matches:
            raise InvalidCredentials()
        self.policy.check(new_password, row.login)
        # Only if the hash is still the one just checked: a concurrent change wins, this one fails.
        if not self.store.replace_hash(row.id, row.password_hash, self.hasher.hash(new_password)):
            raise InvalidCredentials()
        self.store.void_tokens(row.id, "reset", self.clock())

    def request_password_reset(self, login_or_email: str) -> None:
        """Mail a reset link to the account with this login, or to every account with this address.

        Returns ``None`` in every case, having made a token and looked both ways; raises only
        when delivering to an existing account fails (:class:`~authcore.ProviderUnavailable`).
        """
        token, _ = new_token()  # made whether or not anyone gets it: the same work either way
        if (
            not isinstance(login_or_email, str)
            or not 1 <= len(login_or_email) <= 320
            or not login_or_email.isprintable()
        ):
            return None
        for index, row in enumerate(self._reset_targets(login_or_email)):
            assert row.email is not None  # filtered
            self._send_token(
                to=row.email, purpose="reset", subject="Reset your password",
                intro=f"Someone asked to reset the password of the account {row.login!r}. "
                "If it was not you, ignore this message.",
                template=self.config.reset_url, ttl=self.config.reset_token_ttl,
                token=token if index == 0 else new_token()[0], user_id=row.id,
            )  # fmt: skip
        return None

    def reset_password(self, token: str, new_password: str) -> str:
        """Spend a reset token and set the password in one transaction; the login.

        A password the policy refuses leaves the token unspent. Every other reset token of the
        user is voided too. :class:`~authcore.InvalidToken` (one message) otherwise.
        """
        if not well_formed(token):
            raise InvalidToken(TOKEN_REFUSED)
        digest, now = token_hash(token), self.clock()
        found = self.store.peek(digest, "reset", now)
        row = self.store.user_by_id(found.user_id) if found is not None and found.user_id is not None else None
        if row is None or not row.enabled:
            raise InvalidToken(TOKEN_REFUSED)
        self.policy.check(new_password, row.login)
        new_hash = self.hasher.hash(new_password)

        def set_password(connection: Connection) -> None:
            self.store.set_user_columns(connection, row.id, now, password_hash=new_hash)
            self.store.void_within(connection, row.id, "reset", now, keep=None)

        spent, _ = self.store.spend(digest, "reset", now, set_password)
        if not spent:
            raise InvalidToken(TOKEN_REFUSED)
        log.info("provider %r: user #%d reset their password", self.name, row.id)
        return row.login

    # ------------------------------------------------------------ e-mail verification

    def request_email_verification(self, login: str) -> None:
        """Mail a verification link to the user's current address.

        :class:`~authcore.UserNotFound` for an unknown login; :class:`~authcore.BadRequest`
        (422) when the user has no address to verify.
        """
        if not isinstance(login, str) or not 1 <= len(login) <= MAX_LOGIN_LENGTH or not login.isprintable():
            raise UserNotFound()
        row = self.store.get(login_key(login))
        if not row.email or not plausible_address(row.email):
            raise BadRequest("the user has no e-mail address to verify", status_code=422)
        self._send_token(
            to=row.email, purpose="verify", subject="Confirm your e-mail address",
            intro=f"Confirm that {row.email} belongs to the account {row.login!r}.",
            template=self.config.verification_url, ttl=self.config.verification_token_ttl,
            token=new_token()[0], user_id=row.id,
        )  # fmt: skip

    def verify_email(self, token: str) -> str:
        """Spend a verification token and mark the address verified; the login.

        The token proves the address it was sent to: if the user's address changed since,
        :class:`~authcore.InvalidToken` and the token stays unspent.
        """
        if not well_formed(token):
            raise InvalidToken(TOKEN_REFUSED)
        digest, now = token_hash(token), self.clock()
        found = self.store.peek(digest, "verify", now)
        row = self.store.user_by_id(found.user_id) if found is not None and found.user_id is not None else None
        if found is None or row is None or found.email is None:
            raise InvalidToken(TOKEN_REFUSED)
        address = found.email

        def mark(connection: Connection) -> None:
            if not self.store.set_user_columns(connection, row.id, now, email_verified=True, expect_email=address):
                raise InvalidToken(TOKEN_REFUSED)  # rolls the spending back

        spent, _ = self.store.spend(digest, "verify", now, mark)
        if not spent:
            raise InvalidToken(TOKEN_REFUSED)
        return row.login

    # ------------------------------------------------------------ invitations

    def invite(self, email: str, roles: Sequence[str] = ()) -> None:
        """Mail an invitation to register (``registration: invitation``); the account gets *roles*.

        :class:`~authcore.BadRequest` (422) for an address that cannot be one;
        :class:`~authcore.ProviderUnavailable` when the message cannot be sent.
        """
        if not plausible_address(email):
            raise BadRequest("not an e-mail address", status_code=422)
        self._send_token(
            to=email, purpose="invite", subject="You are invited",
            intro="You are invited to create an account. Choose a login and a password on this page:",
            template=self.config.invitation_url, ttl=self.config.invitation_ttl,
            token=new_token()[0], roles=check_roles(roles),
        )  # fmt: skip

    def _register_invited(self, registration: Registration, columns: Callable[[], dict[str, Any]]) -> UserRow:
        """Create the user and spend the invitation in one transaction.

        The token is checked first: *columns* (the user's columns, whose password hashing is
        the costly part) runs only for a live invitation.
        """
        token = registration.invitation if isinstance(registration, LocalRegistration) else None
        if token is None or not well_formed(token):
            raise InvalidToken(TOKEN_REFUSED)
        digest, now = token_hash(token), self.clock()
        found = self.store.peek(digest, "invite", now)
        if found is None or found.email is None:
            raise InvalidToken(TOKEN_REFUSED)
        if registration.email is not None and registration.email.lower() != found.email.lower():
            raise BadRequest("the e-mail address must be the one the invitation was sent to", status_code=422)
        # The invitation reached this address: it is verified.
        values = {**columns(), "email": found.email, "email_verified": True}
        invited_roles = list(dict.fromkeys([*self.config.registration_roles, *found.roles]))
        spent, row = self.store.spend(
            digest, "invite", now, lambda connection: self.store.insert_within(connection, values, invited_roles)
        )
        if not spent or row is None:
            raise InvalidToken(TOKEN_REFUSED)
        return row
