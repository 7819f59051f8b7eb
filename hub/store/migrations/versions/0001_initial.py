"""The initial schema: the tables of hub/store/tables.py as they were when migrations began.

Written out table by table (not `metadata.create_all`) so that this revision stays what it
was while tables.py moves on; later revisions change the schema from here.

Every CREATE says IF NOT EXISTS so that a store made before migrations existed (by
`create_all`, without an alembic_version table) is adopted: its tables and rows are kept,
what it lacks (the ordering indexes added late, any newer table) is created, and it is
stamped 0001. A fresh database gets everything. Later revisions need no such care.

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
    """Create the tables and indexes of the initial schema that do not exist yet."""
    op.create_table(
        "events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("normalized", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("processed_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("source", "delivery_id", name="uq_events_source_delivery"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_events_status_lease", "events", ["status", "lease_until"], if_not_exists=True
    )
    op.create_index(
        "ix_events_status_received", "events", ["status", "received_at"], if_not_exists=True
    )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("inbound_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(64), nullable=True),
        sa.Column("destination", sa.String(128), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("ref", sa.String(256), nullable=True),
        sa.Column("entity_key", sa.String(512), nullable=True),
        sa.Column("seq", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        # Unnamed, as `unique=True` in tables.py: PostgreSQL names it
        # deliveries_idempotency_key_key either way.
        sa.UniqueConstraint("idempotency_key"),
        if_not_exists=True,
    )
    op.create_index("ix_deliveries_event", "deliveries", ["event_id"], if_not_exists=True)
    op.create_index(
        "ix_deliveries_status_next",
        "deliveries",
        ["status", "next_attempt_at"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_deliveries_entity",
        "deliveries",
        ["connector", "destination", "entity_key"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_deliveries_entity_order",
        "deliveries",
        ["entity_key", "connector", "status"],
        if_not_exists=True,
    )

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        if_not_exists=True,
    )
    op.create_index("ix_attempts_delivery_id", "attempts", ["delivery_id"], if_not_exists=True)

    op.create_table(
        "rule_firings",
        sa.Column("rule_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("fired_at", sa.Float(), nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_rule_firings_key",
        "rule_firings",
        ["rule_id", "kind", "key", "fired_at"],
        if_not_exists=True,
    )

    op.create_table(
        "groups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("flush_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_groups_open", "groups", ["rule_id", "key", "status"], if_not_exists=True)

    op.create_table(
        "group_events",
        sa.Column("rule_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_group_events_group_id", "group_events", ["group_id"], if_not_exists=True)

    op.create_table(
        "snapshots",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        if_not_exists=True,
    )

    op.create_table(
        "schedule_ticks",
        sa.Column("rule_id", sa.String(200), primary_key=True),
        sa.Column("tick_at", sa.Float(), primary_key=True),
        sa.Column("spec", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("scheduler", sa.String(128), nullable=True),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_schedule_ticks_spec", "schedule_ticks", ["rule_id", "spec"], if_not_exists=True
    )


def downgrade() -> None:
    """Drop everything: going below 0001 means an empty database."""
    for index, table in (
        ("ix_schedule_ticks_spec", "schedule_ticks"),
        ("ix_group_events_group_id", "group_events"),
        ("ix_groups_open", "groups"),
        ("ix_rule_firings_key", "rule_firings"),
        ("ix_attempts_delivery_id", "attempts"),
        ("ix_deliveries_entity_order", "deliveries"),
        ("ix_deliveries_entity", "deliveries"),
        ("ix_deliveries_status_next", "deliveries"),
        ("ix_deliveries_event", "deliveries"),
        ("ix_events_status_received", "events"),
        ("ix_events_status_lease", "events"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "schedule_ticks",
        "snapshots",
        "group_events",
        "groups",
        "rule_firings",
        "attempts",
        "deliveries",
        "events",
    ):
        op.drop_table(table)
