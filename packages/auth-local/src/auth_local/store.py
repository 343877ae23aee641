"""The user store: every SQL statement of the provider, on SQLite and PostgreSQL alike.

Lookups go by *key* (:func:`auth_local.fields.login_key`). Database errors become
:class:`~authcore.ProviderUnavailable` naming the provider and the error's class only:
SQLAlchemy's own messages quote statements and parameters (hashes, user data).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from authcore import ProviderUnavailable, UserExists, UserNotFound

from .db import WRITE, is_memory
from .schema import totp_enrolments, user_roles, users

__all__ = ["UserRow", "UserStore", "PROFILE_FIELDS"]

#: Columns an update may change besides the password, roles and enabled flag.
PROFILE_FIELDS = ("given_name", "family_name", "email", "display_name", "attributes")
#: The most users one list call returns.
MAX_LIST = 10_000


@dataclass(frozen=True)
class UserRow:
    """One user as stored (the hash stays out of the repr)."""

    id: int
    login: str
    login_key: str
    password_hash: str | None = field(repr=False)
    given_name: str | None
    family_name: str | None
    email: str | None
    display_name: str | None
    enabled: bool
    attributes: dict[str, Any]
    roles: tuple[str, ...]
    #: The user proved they receive mail at ``email`` (a new address clears it).
    email_verified: bool = False
    #: A confirmed TOTP enrolment exists (read with the user: a login asks for it every time).
    second_factor: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


class UserStore:
    """Reads and writes users through one engine. Safe to use from many threads."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        # An in-memory SQLite database is one connection: its users take turns.
        self._memory_lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if is_memory(engine.url) else contextlib.nullcontext()
        )

    def __repr__(self) -> str:
        return f"<UserStore {self.name!r} {self.engine.dialect.name}>"

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self._memory_lock, self.engine.connect() as connection:
                if write:
                    connection = connection.execution_options(**{WRITE: True})
                with connection.begin():
                    yield connection
        except IntegrityError:
            raise UserExists(f"provider {self.name!r}: a user with that login exists already") from None
        except SQLAlchemyError as exc:
            raise ProviderUnavailable(
                f"provider {self.name!r}: the {self.engine.dialect.name} database failed ({type(exc).__name__})"
            ) from None

    # ------------------------------------------------------------ reads

    def _roles(self, connection: Connection, user_ids: Sequence[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {i: [] for i in user_ids}
        if user_ids:
            query = select(user_roles.c.user_id, user_roles.c.role).where(user_roles.c.user_id.in_(user_ids))
            for user_id, role in connection.execute(query.order_by(user_roles.c.role)):
                found[user_id].append(role)
        return found

    def _rows(self, connection: Connection, query: Any) -> list[UserRow]:
        records = connection.execute(query).mappings().all()
        roles = self._roles(connection, [r["id"] for r in records])
        return [
            UserRow(
                id=r["id"],
                login=r["login"],
                login_key=r["login_key"],
                password_hash=r["password_hash"],
                given_name=r["given_name"],
                family_name=r["family_name"],
                email=r["email"],
                display_name=r["display_name"],
                enabled=bool(r["enabled"]),
                attributes=dict(r["attributes"] or {}),
                roles=tuple(roles[r["id"]]),
                email_verified=bool(r["email_verified"]),
                second_factor=bool(r.get("second_factor")),
            )
            for r in records
        ]

    def _one(self, connection: Connection, key: str) -> UserRow | None:
        enrolled = (
            select(totp_enrolments.c.user_id)
            .where(totp_enrolments.c.user_id == users.c.id, totp_enrolments.c.confirmed_at.is_not(None))
            .exists()
        )
        query = select(users, enrolled.label("second_factor")).where(users.c.login_key == key)
        found = self._rows(connection, query)
        return found[0] if found else None

    def find(self, key: str) -> UserRow | None:
        """The user whose login key is *key*, or ``None``."""
        with self._transaction(write=False) as connection:
            return self._one(connection, key)

    def get(self, key: str) -> UserRow:
        """The user whose login key is *key*; :class:`~authcore.UserNotFound` if absent."""
        row = self.find(key)
        if row is None:
            raise UserNotFound(f"no such user in provider {self.name!r}")
        return row

    def list(self, *, search_key: str | None, search_text: str | None, limit: int, offset: int) -> list[UserRow]:
        """Users sorted by login key, filtered by a substring of the login (key) or of a name."""
        query = select(users).order_by(users.c.login_key)
        if search_key or search_text:
            term = (search_text or "").lower()
            query = query.where(
                or_(
                    users.c.login_key.contains(search_key or term, autoescape=True),
                    func.lower(users.c.display_name).contains(term, autoescape=True),
                    func.lower(users.c.given_name).contains(term, autoescape=True),
                    func.lower(users.c.family_name).contains(term, autoescape=True),
                    func.lower(users.c.email).contains(term, autoescape=True),
                )
            )
        query = query.limit(max(0, min(limit, MAX_LIST))).offset(max(0, offset))
        with self._transaction(write=False) as connection:
            return self._rows(connection, query)

    def ping(self) -> None:
        """One round trip to the database that also proves the tables exist (health)."""
        with self._transaction(write=False) as connection:
            connection.execute(select(users.c.id).limit(1))

    # ------------------------------------------------------------ writes

    def insert(self, values: Mapping[str, Any], roles: Sequence[str]) -> UserRow:
        """Add a user; :class:`~authcore.UserExists` when the login (key) is taken."""
        with self._transaction(write=True) as connection:
            return self.insert_within(connection, values, roles)

    def insert_within(self, connection: Connection, values: Mapping[str, Any], roles: Sequence[str]) -> UserRow:
        """:meth:`insert` inside a transaction the caller holds (an invitation spent with it)."""
        now = _now()
        if self._one(connection, values["login_key"]) is not None:
            raise UserExists(f"provider {self.name!r}: a user with that login exists already")
        user_id = connection.execute(
            insert(users).values(**values, created_at=now, updated_at=now).returning(users.c.id)
        ).scalar_one()
        self._insert_roles(connection, user_id, roles)
        row = self._one(connection, values["login_key"])
        assert row is not None  # written in this transaction
        return row

    def update(self, key: str, values: Mapping[str, Any]) -> UserRow:
        """Change columns of a user; :class:`~authcore.UserNotFound` if absent."""
        with self._transaction(write=True) as connection:
            done = connection.execute(
                update(users).where(users.c.login_key == key).values(**values, updated_at=_now())
            ).rowcount
            row = self._one(connection, key) if done else None
        if row is None:
            raise UserNotFound(f"no such user in provider {self.name!r}")
        return row

    def replace_hash(self, user_id: int, old: str, new: str) -> bool:
        """Swap *old* for *new* unless the hash changed meanwhile (a password set concurrently wins)."""
        with self._transaction(write=True) as connection:
            done = connection.execute(
                update(users)
                .where(and_(users.c.id == user_id, users.c.password_hash == old))
                .values(password_hash=new, updated_at=_now())
            ).rowcount
        return bool(done)

    def delete(self, key: str) -> None:
        """Remove a user and their roles; :class:`~authcore.UserNotFound` if absent."""
        with self._transaction(write=True) as connection:
            row = self._one(connection, key)
            if row is None:
                raise UserNotFound(f"no such user in provider {self.name!r}")
            connection.execute(delete(user_roles).where(user_roles.c.user_id == row.id))
            connection.execute(delete(users).where(users.c.id == row.id))

    def _insert_roles(self, connection: Connection, user_id: int, roles: Sequence[str]) -> None:
        if not roles:
            return
        rows = [{"user_id": user_id, "role": role} for role in dict.fromkeys(roles)]
        # A role the user has already is no error, also when two requests add it at once.
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(user_roles).values(rows).on_conflict_do_nothing())

    def add_roles(self, key: str, roles: Sequence[str]) -> None:
        """Give roles (those held already are kept once)."""
        with self._transaction(write=True) as connection:
            row = self._one(connection, key)
            if row is None:
                raise UserNotFound(f"no such user in provider {self.name!r}")
            self._insert_roles(connection, row.id, roles)
            connection.execute(update(users).where(users.c.id == row.id).values(updated_at=_now()))

    def remove_roles(self, key: str, roles: Sequence[str]) -> None:
        """Take roles away (those not held are ignored)."""
        with self._transaction(write=True) as connection:
            row = self._one(connection, key)
            if row is None:
                raise UserNotFound(f"no such user in provider {self.name!r}")
            connection.execute(
                delete(user_roles).where(and_(user_roles.c.user_id == row.id, user_roles.c.role.in_(list(roles))))
            )
            connection.execute(update(users).where(users.c.id == row.id).values(updated_at=_now()))
