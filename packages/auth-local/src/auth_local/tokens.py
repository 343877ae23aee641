"""Single-use account tokens (password reset, e-mail verification, invitation) and their SQL.

A token is 256 random bits, url-safe; the database keeps only its SHA-256 hash, so a copy
of the database redeems nothing. Spending is one ``UPDATE ... WHERE used_at IS NULL AND
expires_at > now``: of several requests with one token exactly one sees a row count of 1,
on SQLite (writers take turns) and PostgreSQL (the row lock re-checks the condition).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, TypeVar

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, select, update

from .schema import account_tokens, users
from .store import UserRow, UserStore

__all__ = ["AccountStore", "TokenRow", "Purpose", "new_token", "token_hash", "well_formed"]

Purpose = Literal["reset", "verify", "invite"]
T = TypeVar("T")

#: ``secrets.token_urlsafe(32)``: 32 bytes, 43 characters of the url-safe base64 alphabet.
TOKEN_BYTES: Final = 32
TOKEN_LENGTH: Final = 43
_ALPHABET: Final = frozenset(string.ascii_letters + string.digits + "-_")


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """Hex SHA-256 of *token* (a plain hash suffices: the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: object) -> bool:
    """Whether *token* could be one of ours; anything else is refused before the database."""
    return isinstance(token, str) and len(token) == TOKEN_LENGTH and _ALPHABET.issuperset(token)


@dataclass(frozen=True)
class TokenRow:
    """A stored token (its hash stays out of the repr)."""

    id: int
    user_id: int | None
    purpose: str
    token_hash: str = field(repr=False)
    email: str | None
    roles: tuple[str, ...]


class AccountStore(UserStore):
    """The user store plus the token table: a token and what it unlocks change in one transaction."""

    def find_by_email(self, email: str, *, limit: int = 10) -> list[UserRow]:
        """Users whose e-mail is *email*, ignoring case (an address may serve several accounts)."""
        query = select(users).where(func.lower(users.c.email) == email.lower()).order_by(users.c.id).limit(limit)
        with self._transaction(write=False) as connection:
            return self._rows(connection, query)

    def issue_token(
        self,
        *,
        purpose: Purpose,
        digest: str,
        expires_at: datetime,
        now: datetime,
        user_id: int | None = None,
        email: str | None = None,
        roles: Sequence[str] = (),
    ) -> int:
        """Store a token's hash; its row id. Expired tokens go at the same time (the table stays small)."""
        values = {
            "user_id": user_id,
            "purpose": purpose,
            "token_hash": digest,
            "email": email,
            "roles": list(roles),
            "expires_at": expires_at,
            "created_at": now,
        }
        with self._transaction(write=True) as connection:
            connection.execute(delete(account_tokens).where(account_tokens.c.expires_at <= now))
            return int(
                connection.execute(insert(account_tokens).values(**values).returning(account_tokens.c.id)).scalar_one()
            )

    def discard_token(self, token_id: int) -> None:
        """Remove a token that was never delivered."""
        with self._transaction(write=True) as connection:
            connection.execute(delete(account_tokens).where(account_tokens.c.id == token_id))

    def void_tokens(self, user_id: int, purpose: Purpose, now: datetime, *, keep: int | None = None) -> None:
        """Spend the user's unused tokens of *purpose* (all but *keep*)."""
        with self._transaction(write=True) as connection:
            self.void_within(connection, user_id, purpose, now, keep=keep)

    def void_within(
        self, connection: Connection, user_id: int, purpose: Purpose, now: datetime, *, keep: int | None
    ) -> None:
        condition = and_(
            account_tokens.c.user_id == user_id,
            account_tokens.c.purpose == purpose,
            account_tokens.c.used_at.is_(None),
        )
        if keep is not None:
            condition = and_(condition, account_tokens.c.id != keep)
        connection.execute(update(account_tokens).where(condition).values(used_at=now))

    def _valid(self, digest: str, purpose: Purpose, now: datetime) -> ColumnElement[bool]:
        return and_(
            account_tokens.c.token_hash == digest,
            account_tokens.c.purpose == purpose,
            account_tokens.c.used_at.is_(None),
            account_tokens.c.expires_at > now,
        )

    def peek(self, digest: str, purpose: Purpose, now: datetime) -> TokenRow | None:
        """The unused, unexpired token with this hash, without spending it."""
        with self._transaction(write=False) as connection:
            record = connection.execute(select(account_tokens).where(self._valid(digest, purpose, now))).first()
        if record is None:
            return None
        return TokenRow(
            id=record.id,
            user_id=record.user_id,
            purpose=record.purpose,
            token_hash=record.token_hash,
            email=record.email,
            roles=tuple(record.roles or ()),
        )

    def spend(
        self, digest: str, purpose: Purpose, now: datetime, then: Callable[[Connection], T]
    ) -> tuple[bool, T | None]:
        """Mark the token used and run *then* in the same transaction; ``(False, None)`` if it was not valid.

        *then* may raise: the transaction rolls back and the token stays unused.
        """
        with self._transaction(write=True) as connection:
            done = connection.execute(
                update(account_tokens).where(self._valid(digest, purpose, now)).values(used_at=now)
            ).rowcount
            if done != 1:
                return False, None
            return True, then(connection)

    def set_user_columns(
        self, connection: Connection, user_id: int, now: datetime, *, expect_email: str | None = None, **values: object
    ) -> int:
        """Within a :meth:`spend`: change columns of user *user_id* (if their address is still
        *expect_email*, when given); the row count."""
        condition = users.c.id == user_id
        if expect_email is not None:
            condition = and_(condition, func.lower(users.c.email) == expect_email.lower())
        return connection.execute(update(users).where(condition).values(**values, updated_at=now)).rowcount

    def user_by_id(self, user_id: int) -> UserRow | None:
        """The user with row id *user_id*, or ``None``."""
        with self._transaction(write=False) as connection:
            found = self._rows(connection, select(users).where(users.c.id == user_id))
        return found[0] if found else None
