"""The tables, as SQLAlchemy Core objects: what the store queries (migrations create them).

The migrations in ``auth_local/migrations`` are the schema's history and create these
tables; this module is what the code reads and writes now, and a test checks that both
agree (``alembic check`` finds no difference after ``upgrade head``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    false,
)

__all__ = ["metadata", "users", "user_roles", "account_tokens", "totp_enrolments", "recovery_codes", "VERSION_TABLE"]

#: Alembic's bookkeeping table, named for this package so that a host application's own
#: alembic history in the same database is left alone.
VERSION_TABLE = "auth_local_alembic_version"

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("login", String(256), nullable=False, unique=True),
    # NFKC + casefold of login: every lookup and the uniqueness that matters use it.
    Column("login_key", String(1024), nullable=False, unique=True),
    # NULL: the user cannot log in until a password is set.
    Column("password_hash", String(512), nullable=True),
    Column("given_name", String(256), nullable=True),
    Column("family_name", String(256), nullable=True),
    Column("email", String(320), nullable=True),
    Column("display_name", String(256), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("attributes", JSON, nullable=False),
    # Set when the user redeemed a verification token sent to ``email``; a new address clears it.
    Column("email_verified", Boolean, nullable=False, server_default=false()),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(256), primary_key=True),
)

#: Single-use tokens of the self-service flows, kept only as SHA-256 hashes.
account_tokens = Table(
    "account_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL for an invitation: its user does not exist yet.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("purpose", String(16), nullable=False),  # reset | verify | invite
    Column("token_hash", String(64), nullable=False, unique=True),
    # The address the token was sent to: a verification proves that one address only.
    Column("email", String(320), nullable=True),
    # An invitation's roles.
    Column("roles", JSON, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: A user's TOTP enrolment: pending until a first code confirms it (``confirmed_at``). One row a
#: user: a pending enrolment is replaced by a new one, a confirmed one is removed before another.
#: The secret is stored as the app was given it, or sealed with ``second_factor.secret_keys``
#: (:mod:`auth_local.secret_box`; the provider must compute codes from it, so it is not hashed).
totp_enrolments = Table(
    "totp_enrolments",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret", String(512), nullable=False),  # base32, or v1:<key id>:<base64> sealed (migration 0004)
    # The parameters the app was given (a later change of the config leaves this enrolment working).
    Column("digits", Integer, nullable=False),
    Column("period", Integer, nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
    # The time step (unix time // period) of the last accepted code, 0 for none: only a later
    # step is accepted, so a code works once.
    Column("last_step", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Single-use recovery codes, kept only as SHA-256 hashes (valid with a confirmed enrolment).
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)
