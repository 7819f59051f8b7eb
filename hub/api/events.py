"""GET /api/v1/events and /api/v1/events/{id}."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.api import views
from hub.api.http import error, masked_json, page_json, query_choice, query_int, query_since
from hub.runtime import Runtime
from hub.store.queries import (
    InboundFilter,
    deliveries_of_event,
    event_processed_at,
    list_events,
    matched_rules,
)

EVENT_STATUSES = ("received", "processing", "processed", "failed")


def event_filter(request: Request, now: float) -> InboundFilter:
    q = request.query_params
    return InboundFilter(
        source=q.get("source") or None,
        type=q.get("type") or None,
        status=query_choice(request, "status", EVENT_STATUSES),
        since=query_since(request, now),
        q=q.get("q") or None,
        limit=query_int(request, "limit", 50, low=1, high=200),
        cursor=q.get("cursor") or None,
    )


async def list_events_endpoint(request: Request) -> Response:
    return await page_json(request, event_filter, list_events, views.event_summary)


def load_event_detail(runtime: Runtime, event_id: str) -> dict[str, Any] | None:
    """Everything about one inbound event, as the API shows it (unmasked)."""
    store = runtime.store
    row = store.get_event(event_id)
    if row is None:
        return None
    # A chat command's body is stored sealed; shown opened, its credentials masked (views).
    row = replace(row, body=store.cipher.open_bytes(row.body))
    ids = [str(e.get("id")) for e in row.normalized or [] if isinstance(e, dict)]
    deliveries = [(d, store.list_attempts(d.id)) for d in deliveries_of_event(store, event_id)]
    return views.event_detail(
        row,
        matched=matched_rules(store, event_id, ids),
        deliveries=deliveries,
        processed_at=event_processed_at(store, event_id),
    )


def without_raw(detail: dict[str, Any]) -> dict[str, Any]:
    """An event detail without the request as received (body, headers, `data.raw`): what a
    role below `RAW_PAYLOAD_ROLE` sees, since a payload may hold personal data."""
    normalized = [
        {**e, "data": {**e["data"], "raw": None}}
        if isinstance(e, dict) and isinstance(e.get("data"), dict) and "raw" in e["data"]
        else e
        for e in detail.get("normalized") or []
    ]
    return {
        **detail,
        "headers": None,
        "payload": None,
        "payload_hidden": True,
        "normalized": normalized,
    }


async def get_event_endpoint(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    event_id = request.path_params["event_id"]
    detail = await asyncio.to_thread(load_event_detail, runtime, event_id)
    if detail is None:
        return error(404, "not_found", f"no event with id '{event_id}'")
    if not request.user.sees_payloads:
        detail = without_raw(detail)
    return masked_json(request, detail)
