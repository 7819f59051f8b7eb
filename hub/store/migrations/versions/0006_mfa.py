"""Second factors for dashboard password users: TOTP secrets and recovery code hashes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "mfa_totp",
        sa.Column("username", sa.String(200), primary_key=True),
        sa.Column("secret", sa.String(512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("confirmed_at", sa.Float(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("username", sa.String(200), primary_key=True),
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mfa_recovery_codes")
    op.drop_table("mfa_totp")
