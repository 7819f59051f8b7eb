"""POST /hooks/{source}: size cap, verify, dedup, store durably, answer 202.

Ingress never calls a provider: everything slow happens in the worker. The steps are
plain functions on the ASGI scope's parts, so the Starlette route below and the bare
ASGI fast path (hub/ingress/fast.py) run the same code and answer the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from hub.errors import PayloadTooLarge, RequestRejected, StoreError, UnknownSource
from hub.events import event_id_for
from hub.ingress.commit import GroupCommitWriter
from hub.logging import REVEAL
from hub.observe.metrics import record_rejection
from hub.runtime import Runtime
from hub.sources.base import HookRequest, Source
from hub.store import NewInbound
from hub.store.notices import record_notice

log = logging.getLogger("switchboard.ingress")

#: Set by ingress from `/hooks/<source>/<path>`, read by sources in `normalize`.
PATH_HEADER = "x-switchboard-path"
#: Headers never stored with an event: credentials, and signatures already checked.
_DROPPED_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-goog-channel-token")


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON answer: what `JSONResponse(content, status, headers)` would send."""

    status: int
    content: Mapping[str, Any]
    headers: Mapping[str, str] | None = None


async def receive_hook(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    name = request.path_params["source"]
    source = find_source(runtime, name)
    body = await read_body(request, runtime.settings.server.max_body_bytes)
    reply = await accept(
        runtime,
        request.state.writer,
        source,
        name,
        raw_headers=request.headers.raw,
        query=dict(request.query_params),
        body=body,
        suffix=request.path_params.get("path"),
        client=request.client.host if request.client else None,
    )
    return JSONResponse(dict(reply.content), status_code=reply.status, headers=reply.headers)


def find_source(runtime: Runtime, name: str) -> Source:
    """The enabled source `name`; UnknownSource (404) names the enabled ones."""
    source = runtime.sources.get(name)
    if source is None:
        raise UnknownSource(
            f"no source named '{name}' is enabled; enabled: "
            f"{', '.join(sorted(runtime.sources)) or 'none'}"
        )
    return source


async def accept(
    runtime: Runtime,
    writer: GroupCommitWriter,
    source: Source,
    name: str,
    *,
    raw_headers: Iterable[tuple[bytes, bytes]],
    query: dict[str, str],
    body: bytes,
    suffix: str | None,
    client: str | None,
) -> Reply:
    """Verify a read request, store it (group commit) and say what to answer."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
    # /hooks/<source>/<path>: the path names what sent it (a Notion automation's name);
    # only the hub sets this header, so a sender cannot pose as another path.
    headers.pop(PATH_HEADER, None)
    if suffix:
        headers[PATH_HEADER] = str(suffix)[:200]
    hook = HookRequest(
        source=name, headers=headers, body=body, query=query, received_at=runtime.clock.now()
    )
    configured = runtime.settings.sources.get(name)  # built-in sources have no settings
    secret = configured.secret if configured is not None else None
    verdict = source.verify(hook, secret, runtime.clock)
    if verdict.admin_notice:
        log.warning("source %s: %s", name, verdict.admin_notice, extra=REVEAL)
        await asyncio.to_thread(
            record_notice, runtime.store, name, verdict.admin_notice, hook.received_at, client
        )
    if not verdict.store:
        return Reply(verdict.status, dict(verdict.reply or {}))
    inbound_id = event_id_for(name, verdict.provider_delivery_id)
    outcome = await writer.submit(
        NewInbound(
            id=inbound_id,
            source=name,
            provider_delivery_id=verdict.provider_delivery_id,
            received_at=hook.received_at.timestamp(),
            headers=_storable(headers),
            # A chat command's body holds its follow-up token: sealed at rest when the
            # store has keys (the worker opens it to normalize).
            body=runtime.store.cipher.seal_bytes(body) if source.holds_credentials else body,
        )
    )
    if verdict.reply is not None:
        # The provider expects its own protocol answer (Discord's deferred response, Slack's
        # acknowledgement), duplicates included; the inbound's id travels in a header instead.
        extra = {"X-Switchboard-Event-Id": inbound_id}
        if outcome.duplicate:
            extra["X-Switchboard-Duplicate"] = "true"
        return Reply(verdict.status, dict(verdict.reply), extra)
    if outcome.duplicate:
        return Reply(200, {"id": inbound_id, "duplicate": True})
    return Reply(verdict.status, {"id": inbound_id})


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; refuse early on Content-Length, else while streaming."""
    return await read_capped(request.headers.get("content-length"), request.receive, limit)


async def read_capped(declared: str | None, receive: Receive, limit: int) -> bytes:
    """The body from ASGI `receive`, refused (413) as soon as it is known to pass `limit`.

    `declared` is the first Content-Length header; a lying or absent one is caught while
    streaming. A client gone mid-body raises ClientDisconnect, as `Request.stream` does.
    """
    # isascii: headers are decoded as latin-1, and "²".isdigit() holds but int() refuses it.
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is over the {limit}-byte limit")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _storable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _DROPPED_HEADERS}


def rejection(method: str, path: str, exc: RequestRejected) -> Reply:
    """The answer to a refused request, logged: a stable code and a message."""
    log.info("rejected %s %s: %s %s", method, path, exc.status, exc.code)
    return Reply(exc.status, {"code": exc.code, "message": exc.message})


def unavailable(path: str, exc: StoreError) -> Reply:
    """The store is down: 503 so the provider retries later; nothing was accepted."""
    log.error("store unavailable on %s: %s", path, exc)
    return Reply(
        503,
        {"code": "store_unavailable", "message": "the event store is unavailable; retry later"},
        {"Retry-After": "5"},
    )


async def rejected(request: Request, exc: Exception) -> Response:
    """A refused request: a stable code and a message, never a traceback."""
    assert isinstance(exc, RequestRejected)  # noqa: S101 - registered only for this type
    reply = rejection(request.method, request.url.path, exc)
    record_rejection(request, exc)
    return JSONResponse(dict(reply.content), status_code=reply.status)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """The store is down: 503 so the provider retries later; nothing was accepted."""
    assert isinstance(exc, StoreError)  # noqa: S101 - registered only for this type
    reply = unavailable(request.url.path, exc)
    return JSONResponse(dict(reply.content), status_code=reply.status, headers=reply.headers)


__all__ = [
    "Reply",
    "StoreError",
    "accept",
    "find_source",
    "read_body",
    "read_capped",
    "receive_hook",
    "rejected",
    "rejection",
    "store_unavailable",
    "unavailable",
]
