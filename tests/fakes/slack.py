"""A fake Slack: Web API chat.postMessage / chat.update and an incoming webhook.

It records every request and keeps the messages it was sent, so tests can see edits and
thread replies. `script` holds canned misbehaviour for the next requests: an
`{"ok": false, "error": ...}` answer, a 429 with Retry-After, a 5xx, a hang, a bad body.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support import fixture_path

BOT_TOKEN = "xoxb-1234567890-fake-bot-token"
CHANNEL_ID = "C06T4SK5Q2W"
CHANNELS = {CHANNEL_ID: "task-notifications"}
#: Users a DM can be opened with, and their DM channel (the first is the fixture's).
DM_CHANNELS = {"U05LB8ADA7Q": "D06V2KDMA7Q", "U05LC9GRC3H": "D06V2KDMB8R"}
WEBHOOK_PATH = "/services/T05KQ7ZT9RM/B06R7N5YL3R/"
WEBHOOK_SECRET = "hUkLwXzW2aQ9fake0webhook"


def fixture_json(name: str) -> Any:
    return json.loads(fixture_path("slack", name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Reply:
    """A canned answer: status and body (JSON value or raw bytes), or a hang."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class Received:
    path: str
    authorization: str | None
    body: dict[str, Any]
    status: int


@dataclass
class FakeSlack:
    """The fake's state; `app()` serves it, `reset()` starts a test afresh."""

    received: list[Received] = field(default_factory=list)
    script: list[Reply] = field(default_factory=list)
    #: Messages by (channel, ts): what chat.postMessage posted and chat.update changed.
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)
    _next_us: int = 4900

    def reset(self) -> None:
        self._release.set()  # let a hanging request of the last test finish
        with self._lock:
            self.received.clear()
            self.script.clear()
            self.messages.clear()
            self._release = threading.Event()

    def fail_next(self, error: str, *, status: int = 200, **extra: Any) -> None:
        self.script.append(Reply(status, {"ok": False, "error": error, **extra}))

    def rate_limit_next(self) -> None:
        """The recorded 429 of chat.postMessage: `ratelimited` with its real headers."""
        headers = fixture_json("chat.postMessage.ratelimited.headers.json")
        self.script.append(
            Reply(
                int(headers["_status"]),
                fixture_json("chat.postMessage.ratelimited.json"),
                headers={k: v for k, v in headers.items() if k == "Retry-After"},
            )
        )

    def webhook_fail_next(self, status: int, code: str, **headers: str) -> None:
        """Incoming webhooks answer errors as a plain-text code with an HTTP status."""
        self.script.append(Reply(status, code, headers=headers))

    def raw_next(self, status: int, raw: bytes, content_type: str, **headers: str) -> None:
        self.script.append(Reply(status, raw=raw, content_type=content_type, headers=headers))

    def hang_next(self) -> None:
        self.script.append(Reply(hang=True))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/chat.postMessage", self._post_message, methods=["POST"]),
                Route("/api/chat.update", self._update, methods=["POST"]),
                Route("/api/conversations.open", self._open, methods=["POST"]),
                Route(WEBHOOK_PATH + "{secret}", self._webhook, methods=["POST"]),
            ]
        )

    async def _canned(self, request: Request, body: dict[str, Any]) -> Response | None:
        with self._lock:
            reply = self.script.pop(0) if self.script else None
            release = self._release
        if reply is None:
            return None
        if reply.hang:
            await asyncio.to_thread(release.wait, 10)
        response: Response
        if reply.raw is not None:
            response = Response(reply.raw, reply.status, reply.headers, reply.content_type)
        elif isinstance(reply.body, str):
            response = PlainTextResponse(reply.body, reply.status, reply.headers)
        else:
            response = JSONResponse(reply.body or {"ok": True}, reply.status, reply.headers)
        self._record(request, body, response.status_code)
        return response

    def _record(self, request: Request, body: dict[str, Any], status: int) -> None:
        with self._lock:
            self.received.append(
                Received(request.url.path, request.headers.get("authorization"), body, status)
            )

    def _api_error(self, request: Request, body: dict[str, Any]) -> Response | None:
        """Slack's checks in its order: auth first, then the channel."""
        error = None
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            error = "invalid_auth"
        elif (
            body.get("channel") not in CHANNELS and body.get("channel") not in DM_CHANNELS.values()
        ):
            error = "channel_not_found"
        if error is None:
            return None
        self._record(request, body, 200)
        return JSONResponse({"ok": False, "error": error})

    async def _canned_or_refused(self, request: Request, body: dict[str, Any]) -> Response | None:
        """A Web API method's answer before its own work: the script's, else Slack's error."""
        canned = await self._canned(request, body)
        return canned if canned is not None else self._api_error(request, body)

    async def _post_message(self, request: Request) -> Response:
        body = await request.json()
        if (early := await self._canned_or_refused(request, body)) is not None:
            return early
        with self._lock:
            self._next_us += 100
            ts = f"1763719201.{self._next_us:06d}"
            message = {**fixture_json("chat.postMessage.ok.json")["message"], "ts": ts}
            message.update({k: body[k] for k in ("text", "blocks", "thread_ts") if k in body})
            if "blocks" not in body:
                message.pop("blocks")
            self.messages[(body["channel"], ts)] = message
        self._record(request, body, 200)
        return JSONResponse(
            {
                **fixture_json("chat.postMessage.ok.json"),
                "channel": body["channel"],
                "ts": ts,
                "message": message,
            }
        )

    async def _open(self, request: Request) -> Response:
        """conversations.open: slack-sdk sends its arguments as a form or a query."""
        raw = (await request.body()).decode()
        if "json" in request.headers.get("content-type", ""):
            sent = json.loads(raw or "{}")
        else:
            sent = dict(parse_qsl(raw))
        body = {**dict(request.query_params), **sent}
        canned = await self._canned(request, body)
        if canned is not None:
            return canned
        self._record(request, body, 200)
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        channel = DM_CHANNELS.get(body.get("users", ""))
        if channel is None:
            return JSONResponse({"ok": False, "error": "user_not_found"})
        answer = fixture_json("conversations.open.ok.json")
        return JSONResponse({**answer, "channel": {**answer["channel"], "id": channel}})

    async def _update(self, request: Request) -> Response:
        body = await request.json()
        if (early := await self._canned_or_refused(request, body)) is not None:
            return early
        key = (body["channel"], body.get("ts", ""))
        with self._lock:
            message = self.messages.get(key)
            if message is not None:
                message.update({k: body[k] for k in ("text", "blocks") if k in body})
        self._record(request, body, 200)
        if message is None:
            return JSONResponse({"ok": False, "error": "message_not_found"})
        return JSONResponse(
            {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text", "")}
            | {"message": message}
        )

    async def _webhook(self, request: Request) -> Response:
        body = await request.json()
        canned = await self._canned(request, body)
        if canned is not None:
            return canned
        self._record(request, body, 200)
        if request.path_params["secret"] != WEBHOOK_SECRET:
            return PlainTextResponse("no_service", 404)
        return PlainTextResponse("ok")
