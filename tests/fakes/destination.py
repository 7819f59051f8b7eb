"""A Discord-shaped destination that enforces a rate limit and misbehaves on request.

It answers like `POST /api/webhooks/{id}/{token}?wait=true` so the real Discord
connector talks to it, and it keeps what a chaos test needs to judge the hub: every
arrival with its time and status, 429s counted, and per-entity order.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import fixture_path


@dataclass
class Arrival:
    at: float  # monotonic seconds at arrival
    content: str
    status: int


@dataclass
class FlakyDestination:
    """`limit` = (count, window_s) enforced like Discord; `script` = replies for next requests.

    Script entries: "500", "hang" (answer after `hang_s`, longer than the client's
    timeout), or ("429", retry_after). The window is checked over arrival times with a
    `tolerance_s` grace, because arrivals jitter by the network and event-loop delay
    between the hub's limiter and this server, as they do in front of the real Discord.
    """

    limit: tuple[int, float] | None = None
    tolerance_s: float = 0.0
    hang_s: float = 15.0
    #: Seconds every successful answer takes, so that a kill lands in the middle of sends.
    delay_s: float = 0.0
    script: list[str | tuple[str, float]] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    _window: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1_300_000_000_000_000_000

    def delivered(self) -> list[str]:
        with self._lock:
            return [a.content for a in self.arrivals if a.status == 200]

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for a in self.arrivals if a.status == status)

    def _admit(self, now: float) -> tuple[int, Any, dict[str, str]] | None:
        """None when the request may pass, else the canned non-200 reply."""
        if self.script:
            step = self.script.pop(0)
            if step == "500":
                return 500, {"message": "500: Internal Server Error", "code": 0}, {}
            if isinstance(step, tuple):
                return self._rate_limited(step[1])
            return -1, None, {}  # hang
        if self.limit is not None:
            count, window = self.limit
            while self._window and self._window[0] <= now - (window - self.tolerance_s):
                self._window.popleft()
            if len(self._window) >= count:
                return self._rate_limited(self._window[0] + window - now)
            self._window.append(now)
        return None

    def _budget_headers(self, now: float) -> dict[str, str]:
        """Discord's X-RateLimit-* headers on a success, so the hub can learn the bucket."""
        if self.limit is None:
            return {}
        count, window = self.limit
        remaining = max(0, count - len(self._window))
        reset_after = self._window[0] + window - now if self._window else window
        return {
            "X-RateLimit-Limit": str(count),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": f"{max(0.0, reset_after):.3f}",
        }

    def _rate_limited(self, retry_after: float) -> tuple[int, Any, dict[str, str]]:
        body = json.loads(fixture_path("discord", "webhook.execute.429.json").read_text())
        body["retry_after"] = round(retry_after, 3)
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        }
        return 429, body, headers

    def app(self) -> Starlette:
        message = json.loads(
            fixture_path("discord", "webhook.execute.wait-true.message.json").read_text()
        )

        async def execute(request: Request) -> Response:
            body = await request.json()
            content = str(body.get("content", ""))
            now = time.monotonic()
            with self._lock:
                reply = self._admit(now)
                budget = self._budget_headers(now) if reply is None else {}
                status = 200 if reply is None else reply[0]
                arrival = Arrival(now, content, status if status != -1 else 0)
                self.arrivals.append(arrival)
                self._next_id += 1
                message_id = str(self._next_id)
            if reply is None:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                return JSONResponse({**message, **body, "id": message_id}, headers=budget)
            code, data, headers = reply
            if code == -1:
                await asyncio.sleep(self.hang_s)  # the client has given up long before
                return JSONResponse({**message, **body, "id": message_id})
            return JSONResponse(data, status_code=code, headers=headers)

        return Starlette(
            routes=[Route("/api/webhooks/{hook_id}/{token}", execute, methods=["POST"])]
        )
