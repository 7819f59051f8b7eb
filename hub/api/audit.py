"""GET /api/v1/audit: the audit trail, newest first, filtered; `format=jsonl` exports it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hub.api.http import BadRequest, masked_json, query_int, query_since
from hub.api.views import iso
from hub.auth.audit import ACTIONS
from hub.logging import Masker
from hub.runtime import Runtime
from hub.store.audit import AuditEntry, AuditFilter, list_audit

RESULTS = ("ok", "failed", "denied")
#: Rows read per query while exporting: the export streams, it never holds the whole trail.
EXPORT_BATCH = 1000


def audit_filter(request: Request, now: float) -> AuditFilter:
    q = request.query_params
    action = q.get("action") or None
    if action is not None and action not in ACTIONS:
        raise BadRequest(f"action={action!r} is not one of: {', '.join(ACTIONS)}")
    result = q.get("result") or None
    if result is not None and result not in RESULTS:
        raise BadRequest(f"result={result!r} is not one of: {', '.join(RESULTS)}")
    cursor = q.get("cursor") or None
    if cursor is not None and not cursor.isdigit():
        raise BadRequest(f"cursor={cursor!r} is not a cursor this API wrote")
    return AuditFilter(
        actor=q.get("actor") or None,
        action=action,
        result=result,
        since=query_since(request, now),
        before_id=int(cursor) if cursor else None,
        limit=query_int(request, "limit", 100, low=1, high=1000),
    )


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "result": entry.result,
        "address": entry.address,
        "detail": entry.detail,
    }


async def list_audit_endpoint(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    f = audit_filter(request, runtime.clock.now().timestamp())
    if request.query_params.get("format") == "jsonl":
        return export_jsonl(runtime, f)
    items = await asyncio.to_thread(list_audit, runtime.store, f)
    last = items[-1].id if items and f.limit is not None and len(items) == f.limit else None
    return masked_json(
        request,
        {
            "items": [entry_view(e) for e in items],
            "next_cursor": str(last) if last is not None else None,
        },
    )


def export_jsonl(runtime: Runtime, f: AuditFilter) -> StreamingResponse:
    """Every entry matching `f` (all pages, oldest last), one JSON object per line."""
    masker = Masker(runtime.settings.secret_values())

    async def lines() -> AsyncIterator[bytes]:
        before = f.before_id
        while True:
            page = await asyncio.to_thread(
                list_audit,
                runtime.store,
                AuditFilter(
                    actor=f.actor,
                    action=f.action,
                    result=f.result,
                    since=f.since,
                    before_id=before,
                    limit=EXPORT_BATCH,
                ),
            )
            for entry in page:
                yield (json.dumps(masker(entry_view(entry)), ensure_ascii=False) + "\n").encode()
            if len(page) < EXPORT_BATCH:
                return
            before = page[-1].id

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="switchboard-audit.jsonl"'},
    )
