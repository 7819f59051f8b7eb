"""Record who did what: one audit entry per admin action, from the dashboard or the API.

Handlers call `audit(request, action, ...)` after acting; the actor, role and address
come from the request (the auth middleware put the principal there), the time from the
runtime's clock. An entry that cannot be stored is logged, and the action still stands:
the store being down must not turn a finished replay into an error page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Literal

from starlette.requests import Request

from hub.errors import StoreError
from hub.runtime import Runtime
from hub.store.audit import AuditEntry, AuditFilter, list_audit, record

log = logging.getLogger("switchboard.audit")

Result = Literal["ok", "failed", "denied"]
#: Every action the trail records (filters offer these).
ACTIONS = (
    "login",
    "logout",
    "replay",
    "simulate",
    "rules.reload",
    "notice.decide",
    "role.change",
)
#: Who changes roles: the config file, read at start-up.
CONFIG_ACTOR = "switchboard.yaml"


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def audit(
    request: Request,
    action: str,
    *,
    target: str | None = None,
    result: Result = "ok",
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
    role: str | None = None,
) -> None:
    """Store one entry for this request's principal (or the given `actor`, for logins)."""
    runtime: Runtime = request.state.runtime
    principal = request.scope.get("user")
    entry = AuditEntry(
        at=runtime.clock.now().timestamp(),
        actor=actor if actor is not None else (principal.name if principal else "anonymous"),
        role=role if role is not None else (principal.role if principal else None),
        action=action,
        target=target,
        result=result,
        address=client_address(request),
        detail=detail,
    )
    try:
        await asyncio.to_thread(record, runtime.store, entry)
    except StoreError as exc:
        log.error("audit entry not stored (%s by %s): %s", action, entry.actor, exc)


def record_role_changes(runtime: Runtime, roles: Iterable[tuple[str, str]]) -> int:
    """Compare the configured (name, role) pairs with the roles the trail last saw and
    record each difference (added, changed, removed) as a `role.change`; returns how many."""
    current = dict(roles)
    known: dict[str, str | None] = {}
    for entry in reversed(list_audit(runtime.store, AuditFilter(action="role.change", limit=None))):
        known[entry.target or ""] = (entry.detail or {}).get("to")
    now = runtime.clock.now().timestamp()
    changes = 0
    for name in sorted(set(current) | set(known)):
        before, after = known.get(name), current.get(name)
        if before == after:
            continue
        record(
            runtime.store,
            AuditEntry(
                at=now,
                actor=CONFIG_ACTOR,
                role=None,
                action="role.change",
                target=name,
                detail={"from": before, "to": after},
            ),
        )
        changes += 1
    return changes


def record_configured_roles(runtime: Runtime) -> int:
    """`record_role_changes` for the `admin:` section's tokens and users (start-up)."""
    admin = runtime.settings.admin
    if admin is None:
        return 0
    pairs = [(t.name, t.role) for t in admin.tokens] + [(u.username, u.role) for u in admin.users]
    return record_role_changes(runtime, pairs)
