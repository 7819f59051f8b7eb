"""A fake Discord webhook endpoint that records messages and can be told to misbehave."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.servers import serve_in_thread
from tests.support import fixture_path

WEBHOOK_ID = "1213445701632131072"
WEBHOOK_TOKEN = "tok-not-real"


@dataclass
class Received:
    at: float  # monotonic seconds
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class FakeDiscord:
    """Answers like POST /api/webhooks/{id}/{token}?wait=true; `script` holds canned replies."""

    received: list[Received] = field(default_factory=list)
    #: Replies to use before falling back to 200: (status, json body, headers).
    script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1_213_460_000_000_000_000

    def rate_limit_next(self, retry_after: float) -> None:
        body = json.loads(fixture_path("discord", "webhook.execute.429.json").read_text())
        body["retry_after"] = retry_after
        self.script.append((429, body, {"Retry-After": str(max(1, round(retry_after)))}))

    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status == 200]

    def app(self) -> Starlette:
        message = json.loads(
            fixture_path("discord", "webhook.execute.wait-true.message.json").read_text()
        )

        async def execute(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                status, reply, headers = self.script.pop(0) if self.script else (200, None, {})
                self.received.append(
                    Received(
                        time.monotonic(), request.url.path, dict(request.query_params), body, status
                    )
                )
                self._next_id += 1
                message_id = str(self._next_id)
            if status != 200:
                return JSONResponse(reply, status_code=status, headers=headers)
            return JSONResponse({**message, **body, "id": message_id})

        return Starlette(
            routes=[
                Route("/api/webhooks/{hook_id}/{token}", execute, methods=["POST"]),
            ]
        )


@contextmanager
def served_discord(token: str = WEBHOOK_TOKEN) -> Iterator[tuple[FakeDiscord, str]]:
    """A FakeDiscord on 127.0.0.1 until the block ends: (fake, its webhook URL with `token`)."""
    fake = FakeDiscord()
    with serve_in_thread(fake.app()) as base:
        yield fake, f"{base}/api/webhooks/{WEBHOOK_ID}/{token}"
