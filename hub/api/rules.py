"""GET /api/v1/rules (files, reload state, match counts), POST /api/v1/rules/reload, simulate."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from hub.api import views
from hub.api.http import BadRequest, error, json_body, masked_json
from hub.api.operations import InvalidInput, reload_rules, simulate
from hub.auth.audit import audit
from hub.runtime import Runtime
from hub.store.stats import rule_counts

MAX_SIMULATE_BYTES = 1024 * 1024


async def rules_endpoint(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    counts = await asyncio.to_thread(rule_counts, runtime.store)
    return masked_json(request, views.rules_status(runtime.rules, counts))


async def simulate_endpoint(request: Request) -> Response:
    """`{"source": "github", "headers": {...}, "payload": {...}}`, or `{"payload": <event>}`."""
    runtime: Runtime = request.state.runtime
    body = await json_body(request, limit=MAX_SIMULATE_BYTES)
    source = body.get("source")
    headers = body.get("headers") or {}
    if source is not None and not isinstance(source, str):
        raise BadRequest("source must be a source name such as 'github'")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BadRequest("headers must be an object of strings")
    if "payload" not in body:
        raise BadRequest("payload is required: the raw webhook body, or a normalized event")
    try:
        results = simulate(runtime, source=source, payload=body["payload"], headers=headers)
    except InvalidInput:
        await audit(request, "simulate", target=source, result="failed", detail={"via": "api"})
        raise
    await audit(request, "simulate", target=source or "event", detail={"via": "api"})
    return masked_json(request, {"dry_run": True, "events": results})


async def reload_endpoint(request: Request) -> Response:
    """Reload the rule files now: 200 with the counts, or 422 with the rejection."""
    runtime: Runtime = request.state.runtime
    result = await asyncio.to_thread(reload_rules, runtime)
    await audit(
        request,
        "rules.reload",
        result="failed" if result.error else "ok",
        detail={"via": "api", "rules": result.rules, "files": result.files},
    )
    if result.error is not None:
        return error(422, "rules_rejected", f"the previous rules keep running: {result.error}")
    return masked_json(request, {"rules": result.rules, "files": result.files})
