"""Table definitions; times are float seconds since the epoch (UTC) for portable comparisons."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: One row per accepted webhook: an "inbound", before normalization into events. The
#: table and the API keep the older name `events`.
events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(64), nullable=False),
    # The provider's id of the request (X-GitHub-Delivery, ...), not a delivery row's id.
    Column("provider_delivery_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # received|processing|processed|failed
    Column("received_at", Float, nullable=False),
    Column("normalized", JSON, nullable=True),  # list of CloudEvents dicts
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", Float, nullable=True),
    Column("processed_at", Float, nullable=True),
    # No unique index on (source, provider_delivery_id): the id is derived from that pair
    # (event_id_for), so the primary key already refuses a second copy (migration 0008).
)
Index("ix_events_status_lease", events.c.status, events.c.lease_until)
# The claim's "is an earlier event still unprocessed?" check reads the oldest one only.
Index("ix_events_status_received", events.c.status, events.c.received_at)

#: The request as received: written once with its `events` row, read when the event is
#: processed or shown, deleted when retention prunes it (no row: pruned). Apart from the
#: row whose status changes, so that a claim or finish does not rewrite 10+ KB each time.
event_bodies = Table(
    "event_bodies",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

#: One row per (event, rule, action): what must be sent, and how it went.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("inbound_id", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("connector", String(64), nullable=False),
    Column("operation", String(64), nullable=True),
    Column("destination", String(128), nullable=True),
    Column("params", JSON, nullable=False),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    # pending|sending|delivered|dead|skipped
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("ref", String(256), nullable=True),
    Column("entity_key", String(512), nullable=True),
    # Event order for one entity: the webhook's receive time plus the action's position.
    Column("seq", Float, nullable=False, default=0.0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # A replay gives a fresh retry budget without rewriting history: the retry policy
    # counts attempts since `retry_base_attempts` and age since `retry_since`.
    Column("retry_base_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("retry_since", Float, nullable=True),
)
Index("ix_deliveries_event", deliveries.c.event_id)
# The process stage reads the pending deliveries of the webhooks it just finished, inside
# its write transaction: without this it walked every pending delivery (the backlog).
Index("ix_deliveries_inbound", deliveries.c.inbound_id)
Index("ix_deliveries_status_next", deliveries.c.status, deliveries.c.next_attempt_at)
Index(
    "ix_deliveries_entity",
    deliveries.c.connector,
    deliveries.c.destination,
    deliveries.c.entity_key,
)
# Per-entity order checks look up the few deliveries of one entity: entity_key first, so
# the lookup stays a handful of rows however large the table grows.
Index(
    "ix_deliveries_entity_order",
    deliveries.c.entity_key,
    deliveries.c.connector,
    deliveries.c.status,
)

#: The audit trail: every send attempt of every delivery.
attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(64), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # ok|retry|fail|error
    Column("status_code", Integer, nullable=True),
    Column("detail", Text, nullable=True),
)

#: Counted firings for `throttle` / `dedupe`; one row per (rule, kind, event) so that
#: processing an event twice counts it once.
rule_firings = Table(
    "rule_firings",
    metadata,
    Column("rule_id", String(200), primary_key=True),
    Column("kind", String(16), primary_key=True),  # throttle|dedupe
    Column("event_id", String(64), primary_key=True),
    Column("key", String(512), nullable=False),
    Column("fired_at", Float, nullable=False),
)
Index(
    "ix_rule_firings_key",
    rule_firings.c.rule_id,
    rule_firings.c.kind,
    rule_firings.c.key,
    rule_firings.c.fired_at,
)

#: Open and flushed `group` windows, and the events collected in them.
groups = Table(
    "groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule_id", String(200), nullable=False),
    Column("key", String(512), nullable=False),
    Column("status", String(16), nullable=False),  # open|flushing|flushed|dropped
    Column("opened_at", Float, nullable=False),
    Column("flush_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("count", Integer, nullable=False, default=0),
)
Index("ix_groups_open", groups.c.rule_id, groups.c.key, groups.c.status)

group_events = Table(
    "group_events",
    metadata,
    Column("rule_id", String(200), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("group_id", String(64), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("event", JSON, nullable=False),
)

#: The last state a source saw of an entity (e.g. a Notion page's flattened properties),
#: to compute `changes` on the next event. `version` orders writes (last_edited_time).
snapshots = Table(
    "snapshots",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("version", String(64), nullable=True),
    Column("doc", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: Claimed ticks of `schedule:` rules. The primary key is the lock: of several schedulers,
#: only the one whose INSERT lands fires a tick. `status` is `fired`, or `baseline` for the
#: row a scheduler writes when it first sees a schedule (`spec`), so that ticks from before
#: the rule existed are never fired as "missed".
schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    Column("rule_id", String(200), primary_key=True),
    Column("tick_at", Float, primary_key=True),
    Column("spec", String(300), nullable=False),
    Column("status", String(16), nullable=False),  # fired|baseline
    Column("event_id", String(64), nullable=True),
    Column("scheduler", String(128), nullable=True),
    Column("claimed_at", Float, nullable=False),
)
Index("ix_schedule_ticks_spec", schedule_ticks.c.rule_id, schedule_ticks.c.spec)

#: Approval requests (hub/team/approvals.py, hub/store/approvals.py): one row per request,
#: `status` pending → approved | rejected | expired exactly once (a conditional UPDATE),
#: with who decided and when. `deciders` are people keys; `messages` the chat refs of the
#: request (to edit them with the decision); `request` what the decision runs.
approvals = Table(
    "approvals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule_id", String(200), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("title", String(512), nullable=False),
    Column("status", String(16), nullable=False),  # pending|approved|rejected|expired
    Column("requester", String(200), nullable=True),
    Column("deciders", JSON, nullable=False),
    Column("request", JSON, nullable=False),
    Column("messages", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("reminded_at", Float, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", Float, nullable=True),
    # The click event that decided it: processed again after a crash, it decides again.
    Column("decided_event", String(64), nullable=True),
)
Index("ix_approvals_status_expires", approvals.c.status, approvals.c.expires_at)

#: Who did what in the admin (hub/auth/audit.py): logins, logouts, replays, simulations,
#: rule reloads, API writes, role changes. Append-only; retention deletes old rows.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),  # token or user name, never a secret
    Column("role", String(16), nullable=True),  # viewer|operator|admin; none when unknown
    Column("action", String(64), nullable=False),  # login|logout|replay|simulate|...
    Column("target", String(512), nullable=True),
    Column("result", String(16), nullable=False),  # ok|failed|denied
    Column("address", String(64), nullable=True),
    Column("detail", JSON, nullable=True),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_actor_at", audit_log.c.actor, audit_log.c.at)

#: Second factors of dashboard password users (hub/admin/mfa.py). `secret` is the TOTP
#: secret, sealed with the store cipher when keys are configured; `confirmed_at` is null
#: until the user typed a first code; `last_step` is the newest 30 s step accepted, so a
#: code is never accepted twice.
mfa_totp = Table(
    "mfa_totp",
    metadata,
    Column("username", String(200), primary_key=True),
    Column("secret", String(512), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("confirmed_at", Float, nullable=True),
    Column("last_step", BigInteger, nullable=True),
)

#: One-time recovery codes: only their SHA-256, deleted when used.
mfa_recovery_codes = Table(
    "mfa_recovery_codes",
    metadata,
    Column("username", String(200), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
)
