"""An index on `deliveries.inbound_id`.

Why this change: when the process stage finishes a batch of webhooks it reads their
pending deliveries inside its write transaction. With no index on `inbound_id` that read
went through the status index and walked every pending delivery, so a destination that
fell behind made every process batch slower, and held the write lock longer, as its
backlog grew.

Building the index reads `deliveries` once; no row changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the index."""
    op.create_index("ix_deliveries_inbound", "deliveries", ["inbound_id"])


def downgrade() -> None:
    """Drop it, for a rollback to the previous release."""
    op.drop_index("ix_deliveries_inbound", table_name="deliveries")
