"""The SQL of the second factor: TOTP enrolments and recovery codes, on SQLite and PostgreSQL alike.

Every use of a code is one conditional ``UPDATE`` whose row count decides: a TOTP code moves
``last_step`` forward only ``WHERE last_step < :step``, a recovery code is spent only ``WHERE
used_at IS NULL``. Of several requests with one code exactly one sees a row count of 1: on
SQLite writers take turns (``BEGIN IMMEDIATE``), on PostgreSQL the second waits for the first's
row lock and then re-checks the condition against the committed row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Exists, and_, delete, exists, func, insert, select, update

from .schema import recovery_codes, totp_enrolments, users
from .tokens import AccountStore

__all__ = ["FactorStore", "EnrolmentRow"]


@dataclass(frozen=True)
class EnrolmentRow:
    """A stored TOTP enrolment (the secret stays out of the repr)."""

    #: As stored: sealed when ``second_factor.secret_keys`` are configured (:mod:`auth_local.secret_box`).
    secret: str = field(repr=False)
    digits: int
    period: int
    confirmed: bool
    #: The time step of the last accepted code (0: none yet).
    last_step: int


def _confirmed(user_id: int) -> Exists:
    """The user has a confirmed enrolment (recovery codes count only then)."""
    return exists().where(and_(totp_enrolments.c.user_id == user_id, totp_enrolments.c.confirmed_at.is_not(None)))


class FactorStore(AccountStore):
    """The user and token store plus the second factor's two tables."""

    def enrolment(self, user_id: int) -> EnrolmentRow | None:
        """The user's enrolment, confirmed or pending, or ``None``."""
        query = select(totp_enrolments).where(totp_enrolments.c.user_id == user_id)
        with self._transaction(write=False) as connection:
            record = connection.execute(query).first()
        if record is None:
            return None
        return EnrolmentRow(
            secret=record.secret,
            digits=record.digits,
            period=record.period,
            confirmed=record.confirmed_at is not None,
            last_step=record.last_step,
        )

    def begin_enrolment(
        self, user_id: int, *, secret: str, digits: int, period: int, code_hashes: Sequence[str], now: datetime
    ) -> bool:
        """Store a pending enrolment and its recovery codes in place of a pending one; ``False``
        (nothing changed) when the user has a confirmed enrolment."""
        with self._transaction(write=True) as connection:
            # Two enrolments begun at once take turns here (PostgreSQL; SQLite writers always do).
            connection.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
            # Only a pending one goes: one confirmed meanwhile (its row lock released) stays and is seen below.
            connection.execute(
                delete(totp_enrolments).where(
                    and_(totp_enrolments.c.user_id == user_id, totp_enrolments.c.confirmed_at.is_(None))
                )
            )
            left = connection.execute(select(totp_enrolments.c.user_id).where(totp_enrolments.c.user_id == user_id))
            if left.first() is not None:
                return False
            connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            connection.execute(
                insert(totp_enrolments).values(
                    user_id=user_id, secret=secret, digits=digits, period=period, last_step=0, created_at=now
                )
            )
            connection.execute(
                insert(recovery_codes), [{"user_id": user_id, "code_hash": digest} for digest in code_hashes]
            )
        return True

    def use_step(
        self, user_id: int, *, secret: str, step: int, confirm: bool, now: datetime, reseal: str | None = None
    ) -> bool:
        """Record *step* as used if it is later than the last used one, for the enrolment with
        *secret* (as stored): a confirmed one, or with *confirm* a pending one, which it confirms;
        *reseal* replaces the stored secret in the same step. Whether it did."""
        condition = and_(
            totp_enrolments.c.user_id == user_id,
            totp_enrolments.c.secret == secret,  # not an enrolment that replaced the one checked
            totp_enrolments.c.last_step < step,
            totp_enrolments.c.confirmed_at.is_(None) if confirm else totp_enrolments.c.confirmed_at.is_not(None),
        )
        values: dict[str, object] = {"last_step": step}
        if reseal is not None:
            values["secret"] = reseal
        if confirm:
            values["confirmed_at"] = now
        with self._transaction(write=True) as connection:
            done = connection.execute(update(totp_enrolments).where(condition).values(**values)).rowcount
        return done == 1

    def spend_recovery_code(self, user_id: int, digests: Sequence[str], now: datetime) -> bool:
        """Spend the user's unused recovery code stored with one of *digests* (a code's digests
        under each key), if their enrolment is confirmed."""
        condition = and_(
            recovery_codes.c.user_id == user_id,
            recovery_codes.c.code_hash.in_(list(digests)),
            recovery_codes.c.used_at.is_(None),
            _confirmed(user_id),
        )
        with self._transaction(write=True) as connection:
            done = connection.execute(update(recovery_codes).where(condition).values(used_at=now)).rowcount
        return done == 1

    def recovery_codes_left(self, user_id: int) -> int:
        """Unused recovery codes of a confirmed enrolment (0 without one)."""
        query = select(func.count()).where(
            and_(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None), _confirmed(user_id))
        )
        with self._transaction(write=False) as connection:
            return int(connection.execute(query).scalar_one())

    def remove_second_factor(self, user_id: int) -> bool:
        """Drop the user's enrolment and recovery codes; whether there was an enrolment."""
        with self._transaction(write=True) as connection:
            connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            done = connection.execute(delete(totp_enrolments).where(totp_enrolments.c.user_id == user_id)).rowcount
        return bool(done)
