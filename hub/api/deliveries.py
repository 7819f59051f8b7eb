"""GET /api/v1/deliveries[/{id}], POST /api/v1/deliveries/{id}/replay and /api/v1/replay."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connectors.base import parse_duration
from hub.api import views
from hub.api.http import (
    BadRequest,
    error,
    json_body,
    masked_json,
    page_json,
    query_choice,
    query_int,
    query_since,
)
from hub.api.operations import ReplayResult, replay_now
from hub.auth.audit import audit
from hub.runtime import Runtime
from hub.store.queries import DeliveryFilter, get_delivery_view, list_deliveries

DELIVERY_STATUSES = ("pending", "sending", "delivered", "dead", "skipped")
#: More ids than this in one replay request is a mistake, or a job for `dead_since`.
MAX_REPLAY_IDS = 1000


def delivery_filter(request: Request, now: float) -> DeliveryFilter:
    q = request.query_params
    return DeliveryFilter(
        status=query_choice(request, "status", DELIVERY_STATUSES),
        connector=q.get("connector") or None,
        destination=q.get("destination") or None,
        rule=q.get("rule") or None,
        event=q.get("event") or None,
        since=query_since(request, now),
        limit=query_int(request, "limit", 50, low=1, high=200),
        cursor=q.get("cursor") or None,
    )


async def list_deliveries_endpoint(request: Request) -> Response:
    return await page_json(request, delivery_filter, list_deliveries, views.delivery)


def load_delivery(runtime: Runtime, delivery_id: str) -> dict[str, Any] | None:
    view = get_delivery_view(runtime.store, delivery_id)
    if view is None:
        return None
    return views.delivery(view, runtime.store.list_attempts(delivery_id))


async def get_delivery_endpoint(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    delivery_id = request.path_params["delivery_id"]
    found = await asyncio.to_thread(load_delivery, runtime, delivery_id)
    if found is None:
        return error(404, "not_found", f"no delivery with id '{delivery_id}'")
    return masked_json(request, found)


async def replay_one_endpoint(request: Request) -> Response:
    """Replay one delivery; 404 if unknown, 409 if it was delivered and `force` is not set."""
    runtime: Runtime = request.state.runtime
    delivery_id = request.path_params["delivery_id"]
    body = await json_body(request, limit=4096)
    force = bool(body.get("force", False))
    if await asyncio.to_thread(get_delivery_view, runtime.store, delivery_id) is None:
        return error(404, "not_found", f"no delivery with id '{delivery_id}'")
    result = await asyncio.to_thread(replay_now, runtime, [delivery_id], force=force)
    await audit(
        request,
        "replay",
        target=delivery_id,
        result="failed" if result.skipped else "ok",
        detail={"via": "api", "force": force, **_replayed(result)},
    )
    if result.skipped:
        return error(
            409,
            "already_delivered",
            f"delivery '{delivery_id}' was delivered; send {{\"force\": true}} to send it again",
        )
    return masked_json(request, _replayed(result), status=202)


async def replay_many_endpoint(request: Request) -> Response:
    """Replay `{"ids": [...]}` (delivery or event ids) and/or `{"dead_since": "1h"}`."""
    runtime: Runtime = request.state.runtime
    body = await json_body(request, limit=256 * 1024)
    ids = body.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequest("ids must be a list of delivery or event ids")
    if len(ids) > MAX_REPLAY_IDS:
        raise BadRequest(f"at most {MAX_REPLAY_IDS} ids per request; use dead_since for more")
    since: float | None = None
    if body.get("dead_since") is not None:
        try:
            back = parse_duration(body["dead_since"]).total_seconds()
        except ValueError as exc:
            raise BadRequest(f"dead_since: {exc}") from exc
        since = runtime.clock.now().timestamp() - back
    if not ids and since is None:
        raise BadRequest('send {"ids": [...]} or {"dead_since": "24h"}')
    force = bool(body.get("force", False))
    result = await asyncio.to_thread(
        replay_now, runtime, list(ids), dead_since_s=since, force=force
    )
    target = ", ".join(ids) if ids else f"dead since {body['dead_since']}"
    detail = {"via": "api", "force": force, "dead_since": body.get("dead_since")}
    await audit(request, "replay", target=target, detail={**detail, **_replayed(result)})
    return masked_json(request, _replayed(result), status=202)


def _replayed(result: ReplayResult) -> dict[str, Any]:
    return {
        "replayed": result.deliveries,
        "events": result.events,
        "skipped_delivered": result.skipped,
    }
