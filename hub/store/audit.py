"""The audit trail's rows: append one, list them newest first with filters, prune old ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select

from hub.store.engine import delete_in_batches
from hub.store.store import Store
from hub.store.tables import audit_log


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One admin action; `actor` is a token or user name, never a secret."""

    at: float
    actor: str
    role: str | None
    action: str
    target: str | None = None
    result: str = "ok"
    address: str | None = None
    detail: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    result: str | None = None
    since: float | None = None
    #: Keyset cursor: only rows with a smaller id (the previous page's last id).
    before_id: int | None = None
    limit: int | None = 100
    actions: tuple[str, ...] = field(default=())


def record(store: Store, entry: AuditEntry) -> None:
    with store.guard("record an audit entry"), store.engine.begin() as conn:
        conn.execute(
            insert(audit_log).values(
                at=entry.at,
                actor=entry.actor[:200],
                role=entry.role,
                action=entry.action,
                target=entry.target[:512] if entry.target else None,
                result=entry.result,
                address=entry.address,
                detail=entry.detail,
            )
        )


def list_audit(store: Store, f: AuditFilter) -> list[AuditEntry]:
    """Newest first."""
    query = select(audit_log).order_by(audit_log.c.id.desc())
    if f.actor:
        query = query.where(audit_log.c.actor == f.actor)
    if f.action:
        query = query.where(audit_log.c.action == f.action)
    if f.actions:
        query = query.where(audit_log.c.action.in_(f.actions))
    if f.result:
        query = query.where(audit_log.c.result == f.result)
    if f.since is not None:
        query = query.where(audit_log.c.at >= f.since)
    if f.before_id is not None:
        query = query.where(audit_log.c.id < f.before_id)
    if f.limit is not None:
        query = query.limit(f.limit)
    with store.guard("list the audit trail"), store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        AuditEntry(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            role=r["role"],
            action=r["action"],
            target=r["target"],
            result=r["result"],
            address=r["address"],
            detail=r["detail"],
        )
        for r in rows
    ]


def prune_audit(store: Store, *, older_than: float, batch_size: int = 500) -> int:
    """Delete entries recorded before `older_than`, in short transactions."""
    return delete_in_batches(
        store.engine,
        audit_log,
        audit_log.c.id,
        select(audit_log.c.id).where(audit_log.c.at < older_than),
        batch_size=batch_size,
        doing="prune the audit trail",
    )
