"""POST /hooks/{source}: size cap, verify, dedup, store durably, answer 202.

Ingress never calls a provider: everything slow happens in the worker.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.errors import PayloadTooLarge, RequestRejected, StoreError, UnknownSource
from hub.events import event_id_for
from hub.ingress.commit import GroupCommitWriter
from hub.logging import REVEAL
from hub.observe.metrics import record_rejection
from hub.runtime import Runtime
from hub.sources.base import HookRequest
from hub.store import NewEvent
from hub.store.notices import record_notice

log = logging.getLogger("switchboard.ingress")

#: Set by ingress from `/hooks/<source>/<path>`, read by sources in `normalize`.
PATH_HEADER = "x-switchboard-path"
#: Headers never stored with an event: credentials, and signatures already checked.
_DROPPED_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-goog-channel-token")


async def receive_hook(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    writer: GroupCommitWriter = request.state.writer
    name = request.path_params["source"]
    source = runtime.sources.get(name)
    if source is None:
        raise UnknownSource(
            f"no source named '{name}' is enabled; enabled: "
            f"{', '.join(sorted(runtime.sources)) or 'none'}"
        )
    limit = runtime.settings.server.max_body_bytes
    body = await read_body(request, limit)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
    # /hooks/<source>/<path>: the path names what sent it (a Notion automation's name);
    # only the hub sets this header, so a sender cannot pose as another path.
    headers.pop(PATH_HEADER, None)
    if suffix := request.path_params.get("path"):
        headers[PATH_HEADER] = str(suffix)[:200]
    hook = HookRequest(
        source=name,
        headers=headers,
        body=body,
        query=dict(request.query_params),
        received_at=runtime.clock.now(),
    )
    configured = runtime.settings.sources.get(name)  # built-in sources have no settings
    secret = configured.secret if configured is not None else None
    verdict = source.verify(hook, secret, runtime.clock)
    if verdict.admin_notice:
        log.warning("source %s: %s", name, verdict.admin_notice, extra=REVEAL)
        await asyncio.to_thread(
            record_notice,
            runtime.store,
            name,
            verdict.admin_notice,
            hook.received_at,
            request.client.host if request.client else None,
        )
    if not verdict.store:
        return JSONResponse(dict(verdict.reply or {}), status_code=verdict.status)
    event_id = event_id_for(name, verdict.delivery_id)
    outcome = await writer.submit(
        NewEvent(
            id=event_id,
            source=name,
            delivery_id=verdict.delivery_id,
            received_at=hook.received_at.timestamp(),
            headers=_storable(headers),
            # A chat command's body holds its follow-up token: sealed at rest when the
            # store has keys (the worker opens it to normalize).
            body=runtime.store.cipher.seal_bytes(body) if source.holds_credentials else body,
        )
    )
    if verdict.reply is not None:
        # The provider expects its own protocol answer (Discord's deferred response, Slack's
        # acknowledgement), duplicates included; the event id travels in a header instead.
        headers = {"X-Switchboard-Event-Id": event_id}
        if outcome.duplicate:
            headers["X-Switchboard-Duplicate"] = "true"
        return JSONResponse(dict(verdict.reply), status_code=verdict.status, headers=headers)
    if outcome.duplicate:
        return JSONResponse({"id": event_id, "duplicate": True}, status_code=200)
    return JSONResponse({"id": event_id}, status_code=verdict.status)


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; refuse early on Content-Length, else while streaming."""
    declared = request.headers.get("content-length")
    # isascii: headers are decoded as latin-1, and "²".isdigit() holds but int() refuses it.
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _storable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _DROPPED_HEADERS}


async def rejected(request: Request, exc: Exception) -> Response:
    """A refused request: a stable code and a message, never a traceback."""
    assert isinstance(exc, RequestRejected)  # noqa: S101 - registered only for this type
    log.info("rejected %s %s: %s %s", request.method, request.url.path, exc.status, exc.code)
    record_rejection(request, exc)
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """The store is down: 503 so the provider retries later; nothing was accepted."""
    log.error("store unavailable on %s: %s", request.url.path, exc)
    return JSONResponse(
        {"code": "store_unavailable", "message": "the event store is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


__all__ = ["StoreError", "read_body", "receive_hook", "rejected", "store_unavailable"]
