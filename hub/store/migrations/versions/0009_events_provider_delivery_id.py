"""`events.delivery_id` becomes `provider_delivery_id`: one name per concept.

Why this change: "delivery id" named both the provider's id of an inbound request
(X-GitHub-Delivery, Notion's event id) and our delivery rows' ids (`deliveries.id`,
`attempts.delivery_id`); the provider's one now says whose it is.

Only the column is renamed: no index or constraint names it since 0008 dropped the
unique one on (source, delivery_id). Both SQLite (3.25+) and PostgreSQL rename a column
in place, so the batch is told never to copy the table: with the default, SQLite's batch
mode would rebuild `events` row by row for a change that is one catalogue edit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Rename the column, keeping its type, nullability and every value."""
    with op.batch_alter_table("events", recreate="never") as batch:
        batch.alter_column(
            "delivery_id",
            new_column_name="provider_delivery_id",
            existing_type=sa.String(256),
            existing_nullable=False,
        )


def downgrade() -> None:
    """Give the column its old name back, for a rollback to the previous release."""
    with op.batch_alter_table("events", recreate="never") as batch:
        batch.alter_column(
            "provider_delivery_id",
            new_column_name="delivery_id",
            existing_type=sa.String(256),
            existing_nullable=False,
        )
