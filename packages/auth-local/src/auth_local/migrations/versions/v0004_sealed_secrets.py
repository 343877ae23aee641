"""TOTP secrets sealed at rest: room for a sealed secret in ``totp_enrolments.secret``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``secret`` from 64 to 512 characters: ``v1:<key id>:<base64>`` (auth_local.secret_box) is longer
    than a base32 secret. Batch mode: SQLite changes a column by copying its table."""
    with op.batch_alter_table("totp_enrolments") as table:
        table.alter_column("secret", existing_type=sa.String(64), type_=sa.String(512), existing_nullable=False)


def downgrade() -> None:
    """Back to 64 characters (a sealed secret would not fit: remove sealed enrolments first)."""
    with op.batch_alter_table("totp_enrolments") as table:
        table.alter_column("secret", existing_type=sa.String(512), type_=sa.String(64), existing_nullable=False)
