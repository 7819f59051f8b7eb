"""Store operations for approval requests (table `approvals`, migration 0004).

A decision is one conditional UPDATE (`WHERE status = 'pending'`): of two clicks at the
same time, or a click replayed by the provider, exactly one changes the row and the
other learns who decided first. Expiry uses the same guard, so a late click after the
deadline finds the request expired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import RowMapping, and_, select, update

from hub.store import statements as sql
from hub.store.store import Store
from hub.store.tables import approvals, deliveries

__all__ = [
    "Approval",
    "add_message",
    "create_approval",
    "decide",
    "expire_due",
    "get_approval",
    "mark_reminded",
    "reminders_due",
    "request_messages",
]

Status = Literal["pending", "approved", "rejected", "expired"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    id: str
    rule_id: str
    event_id: str
    title: str
    status: Status
    requester: str | None
    deciders: tuple[str, ...]
    request: Mapping[str, Any]
    messages: tuple[Mapping[str, Any], ...] = ()
    created_at: float
    expires_at: float | None = None
    reminded_at: float | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    #: The event (a button click) that decided it: processed again, it decides again.
    decided_event: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def create_approval(
    store: Store,
    *,
    approval_id: str,
    rule_id: str,
    event_id: str,
    title: str,
    deciders: Sequence[str],
    request: Mapping[str, Any],
    requester: str | None,
    now: float,
    expires_at: float | None,
) -> Approval:
    """Store a pending request; creating the same id again returns the first one."""
    with (
        store.guard("store an approval request"),
        store.keyed_write(f"approval:{approval_id}") as conn,
    ):
        row = (
            conn.execute(select(approvals).where(approvals.c.id == approval_id)).mappings().first()
        )
        if row is None:
            conn.execute(
                approvals.insert().values(
                    id=approval_id,
                    rule_id=rule_id,
                    event_id=event_id,
                    title=title[:512],
                    status="pending",
                    requester=requester,
                    deciders=list(deciders),
                    request=dict(request),
                    messages=[],
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            row = (
                conn.execute(select(approvals).where(approvals.c.id == approval_id))
                .mappings()
                .first()
            )
    assert row is not None  # noqa: S101 - inserted above in the same transaction
    return _approval(row)


def get_approval(store: Store, approval_id: str) -> Approval | None:
    with store.guard("read an approval request"), store.engine.connect() as conn:
        row = (
            conn.execute(select(approvals).where(approvals.c.id == approval_id)).mappings().first()
        )
    return _approval(row) if row is not None else None


def add_message(store: Store, approval_id: str, message: Mapping[str, Any]) -> None:
    """Remember where the request was posted (`{platform, destination, ref}`) to edit it."""
    with (
        store.guard("record an approval message"),
        store.keyed_write(f"approval:{approval_id}") as conn,
    ):
        found = conn.scalar(select(approvals.c.messages).where(approvals.c.id == approval_id))
        if found is None:
            return
        messages = [m for m in found if m != dict(message)] + [dict(message)]
        conn.execute(
            update(approvals).where(approvals.c.id == approval_id).values(messages=messages)
        )


def decide(
    store: Store, approval_id: str, *, status: Status, by: str, now: float, event_id: str = ""
) -> tuple[bool, Approval | None]:
    """(True, the request) when this call decided it; (False, as it stands) otherwise."""
    with store.guard("decide an approval request"), store.engine.begin() as conn:
        changed = conn.execute(
            update(approvals)
            .where(and_(approvals.c.id == approval_id, approvals.c.status == "pending"))
            .values(status=status, decided_by=by, decided_at=now, decided_event=event_id or None)
        ).rowcount
        row = (
            conn.execute(select(approvals).where(approvals.c.id == approval_id)).mappings().first()
        )
    return changed == 1, _approval(row) if row is not None else None


def expire_due(store: Store, *, now: float) -> list[Approval]:
    """Expire pending requests past their deadline; the ones this call expired."""
    with store.guard("expire approval requests"), store.engine.begin() as conn:
        due = [
            r
            for r in conn.execute(
                select(approvals.c.id).where(
                    approvals.c.status == "pending", approvals.c.expires_at <= now
                )
            ).scalars()
        ]
        expired = []
        for approval_id in due:
            changed = conn.execute(
                update(approvals)
                .where(and_(approvals.c.id == approval_id, approvals.c.status == "pending"))
                .values(status="expired", decided_at=now)
            ).rowcount
            if changed:
                expired.append(approval_id)
        rows = conn.execute(select(approvals).where(approvals.c.id.in_(expired))).mappings()
        return [_approval(r) for r in rows]


def reminders_due(store: Store, *, now: float, every_s: float) -> list[Approval]:
    """Pending requests not reminded (nor created) within `every_s`."""
    with store.guard("read approval reminders"), store.engine.connect() as conn:
        rows = conn.execute(
            select(approvals).where(
                approvals.c.status == "pending", approvals.c.created_at <= now - every_s
            )
        ).mappings()
        return [
            _approval(r)
            for r in rows
            if r["reminded_at"] is None or r["reminded_at"] <= now - every_s
        ]


def mark_reminded(store: Store, approval_id: str, *, now: float) -> None:
    with store.guard("record an approval reminder"), store.engine.begin() as conn:
        conn.execute(update(approvals).where(approvals.c.id == approval_id).values(reminded_at=now))


def request_messages(store: Store, approval: Approval) -> list[dict[str, Any]]:
    """Where the request was posted: its recorded messages and every delivered Discord /
    Slack message of the rule that made it (`{platform, destination, ref}`)."""
    with store.guard("read an approval request's messages"), store.engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.connector, deliveries.c.destination, deliveries.c.ref)
            .where(
                deliveries.c.event_id == approval.event_id,
                deliveries.c.rule_id == approval.rule_id,
                deliveries.c.connector.in_(("discord", "slack")),
                # Found through the event's index: SQLite's guess was every delivered row.
                sql.unindexed(deliveries.c.status) == "delivered",
                deliveries.c.ref.is_not(None),
            )
            .order_by(deliveries.c.action_index)
        ).all()
    found = [dict(m) for m in approval.messages]
    for connector, destination, ref in rows:
        message = {"platform": connector, "destination": destination, "ref": ref}
        if message not in found:
            found.append(message)
    return found


def _approval(row: RowMapping | Mapping[str, Any]) -> Approval:
    return Approval(
        id=row["id"],
        rule_id=row["rule_id"],
        event_id=row["event_id"],
        title=row["title"],
        status=row["status"],
        requester=row["requester"],
        deciders=tuple(row["deciders"] or ()),
        request=dict(row["request"] or {}),
        messages=tuple(row["messages"] or ()),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        reminded_at=row["reminded_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        decided_event=row["decided_event"],
    )
