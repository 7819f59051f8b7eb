"""The bare ASGI path for `POST /hooks/{source}`: ingress without Starlette's per-request objects.

Under load a webhook's cost on the event loop was mostly Starlette's: the router, a
`Request`, `State`, the exception-handling wrappers and a `JSONResponse` per request
(docs/benchmarks.md). This middleware answers exactly the route shape `/hooks/{source}`
itself with the functions the Starlette route uses (hub/ingress/receive.py), so both give
the same statuses, headers and bytes; every other request, method and scope type goes on
to the app unchanged. It sits inside Starlette's error middleware and after
TrustedProxies, so an unexpected error still becomes the same 500 and `scope["client"]`
is already the trusted one.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import URL, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.errors import RequestRejected, StoreError
from hub.ingress.receive import Reply, accept, find_source, read_capped, rejection, unavailable
from hub.observe.metrics import HubMetrics, count_rejection
from hub.runtime import Runtime

_PREFIX = "/hooks/"
_JSON = (b"content-type", b"application/json")


class HookFastPath:
    """ASGI middleware answering `POST /hooks/{source}`; everything else passes through."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        name = path[len(_PREFIX) :] if path.startswith(_PREFIX) else ""
        state = scope.get("state")
        # The router's `{source}` is one non-empty segment; a suffix (`/hooks/{source}/
        # {path}`), a root_path or no lifespan state (no writer) is left to Starlette.
        if not name or "/" in name or scope.get("root_path") or not state or "writer" not in state:
            await self.app(scope, receive, send)
            return
        await _send_json(send, await self._answer(scope, receive, name, state))

    async def _answer(
        self, scope: Scope, receive: Receive, name: str, state: dict[str, Any]
    ) -> Reply:
        runtime = self.runtime
        try:
            source = find_source(runtime, name)
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            declared = next((v for k, v in headers if k == b"content-length"), None)
            body = await read_capped(
                declared.decode("latin-1") if declared is not None else None,
                receive,
                runtime.settings.server.max_body_bytes,
            )
            query = scope.get("query_string", b"")
            client = scope.get("client")
            return await accept(
                runtime,
                state["writer"],
                source,
                name,
                raw_headers=headers,
                query=dict(QueryParams(query)) if query else {},
                body=body,
                suffix=None,
                client=client[0] if client is not None else None,
            )
        except RequestRejected as exc:
            url_path = URL(scope=scope).path
            reply = rejection(scope["method"], url_path, exc)
            metrics = state.get("metrics")
            if isinstance(metrics, HubMetrics) and url_path.startswith(_PREFIX):
                count_rejection(metrics, runtime, name, exc)
            return reply
        except StoreError as exc:
            return unavailable(URL(scope=scope).path, exc)


async def _send_json(send: Send, reply: Reply) -> None:
    """What `JSONResponse(reply.content, reply.status, reply.headers)` sends, byte for byte."""
    content = reply.content
    event_id = content.get("id") if len(content) == 1 else None
    if type(event_id) is str and event_id.isascii() and event_id.replace("-", "").isalnum():
        body = b'{"id":"' + event_id.encode() + b'"}'  # an accepted event's id: a UUID
    else:
        body = render_json(content)
    extra = reply.headers or {}
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    raw.append((b"content-length", str(len(body)).encode("latin-1")))
    raw.append(_JSON)
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def render_json(content: object) -> bytes:
    """Starlette's `JSONResponse.render`."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")
