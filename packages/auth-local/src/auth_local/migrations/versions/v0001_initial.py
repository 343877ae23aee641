"""The first tables: users and their roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``users`` and ``user_roles``."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(256), nullable=False),
        sa.Column("login_key", sa.String(1024), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("given_name", sa.String(256), nullable=True),
        sa.Column("family_name", sa.String(256), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.UniqueConstraint("login"),
        sa.UniqueConstraint("login_key"),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(256), primary_key=True),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("user_roles")
    op.drop_table("users")
