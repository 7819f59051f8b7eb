"""Approvals remember the click event that decided them.

A decision is made inside the click event's processing, before the deliveries it plans
are stored. A worker that dies between the two leaves a decided request whose write-back
was never planned; processed again, the click found the request "already" decided. With
the deciding event stored, the same event decides again (its deliveries keep their
idempotency keys) while any other click still finds it decided.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("decided_event", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("decided_event")
