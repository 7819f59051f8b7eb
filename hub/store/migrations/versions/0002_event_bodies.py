"""Event bodies and headers move out of `events` into `event_bodies`.

Every status change of an event (received, processing, processed) is an UPDATE of its
`events` row, and SQLite and PostgreSQL both write the whole row again: with the 10-13 KB
body in it, 33 KB of log per change instead of 4 KB. The request as received is written
once and read when the event is processed or shown, so it gets a table of its own.

Every row is copied, pruned ones (empty body) too, so nothing is lost; retention deletes
those on its next run. On SQLite the columns are dropped in batch mode (the table is
copied into a new one), on PostgreSQL with ALTER TABLE; both in the upgrade's one
transaction.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create event_bodies, copy every event's headers and body, drop them from events."""
    op.create_table(
        "event_bodies",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.execute(
        "INSERT INTO event_bodies (event_id, headers, body) SELECT id, headers, body FROM events"
    )
    with op.batch_alter_table("events") as batch:
        batch.drop_column("headers")
        batch.drop_column("body")


def downgrade() -> None:
    """Put headers and body back into events (a pruned or missing body comes back empty)."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE events SET "
        "headers = (SELECT b.headers FROM event_bodies b WHERE b.event_id = events.id), "
        "body = (SELECT b.body FROM event_bodies b WHERE b.event_id = events.id)"
    )
    events = sa.table(
        "events", sa.column("headers", sa.JSON()), sa.column("body", sa.LargeBinary())
    )
    op.execute(events.update().where(events.c.headers.is_(None)).values(headers={}))
    op.execute(events.update().where(events.c.body.is_(None)).values(body=b""))
    with op.batch_alter_table("events") as batch:
        batch.alter_column("headers", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("event_bodies")
