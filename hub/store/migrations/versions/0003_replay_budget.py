"""Deliveries keep their history across a replay: a retry budget counted from the replay.

A replay used to reset `attempts` and `created_at`, so the row said it had been tried
once while its history listed every attempt. Now the counts stay, and the retry policy
counts attempts since `retry_base_attempts` and age since `retry_since` (both set by a
replay), so a replayed delivery still gets its full budget of tries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the two columns; existing rows start with no replay (base 0, no since)."""
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("retry_base_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("retry_since", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("retry_since")
        batch.drop_column("retry_base_attempts")
