"""A fake Discord webhook endpoint in its own process: rate limits like Discord, records.

POST /api/webhooks/{id}/{token}   execute webhook; 200 with a message id, or 429
POST /_control                    {"limit": 5, "per": 2.0, "script": [{"retry_after": 1.0}]}
                                  resets the records and the bucket; limit null = unlimited
GET  /_control/records            [[arrival monotonic s, status, content, retry_after], ...]

The bucket follows Discord's documented model (X-RateLimit-Limit / -Remaining /
-Reset-After): `limit` requests, then 429 with `retry_after` until `per` seconds after
the request that opened the bucket. A scripted reply is answered before the bucket is
looked at (`{"retry_after": X}` → one 429 carrying X). Arrival times are CLOCK_MONOTONIC,
which every process on the machine shares, so the driver can compare them with its own.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.limit: int | None = None
        self.per = 2.0
        self.script: list[dict[str, Any]] = []
        self.records: list[tuple[float, int, str, float | None]] = []
        self.window_start: float | None = None
        self.used = 0
        self.next_id = 1_300_000_000_000_000_000

    def reset(self, limit: int | None, per: float, script: list[dict[str, Any]]) -> None:
        with self.lock:
            self.limit, self.per, self.script = limit, per, list(script)
            self.records = []
            self.window_start, self.used = None, 0


def rate_limited(retry_after: float, limit: int) -> Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return JSONResponse(
        body,
        status_code=429,
        headers={
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": "user",
        },
    )


def build_app(state: State) -> Starlette:
    async def execute(request: Request) -> Response:
        arrived = time.monotonic()
        body = await request.json()
        content = str(body.get("content", ""))
        with state.lock:
            if state.script:
                retry_after = float(state.script.pop(0)["retry_after"])
                state.records.append((arrived, 429, content, retry_after))
                return rate_limited(retry_after, state.limit or 5)
            headers: dict[str, str] = {}
            if state.limit is not None:
                if state.window_start is None or arrived >= state.window_start + state.per:
                    state.window_start, state.used = arrived, 0
                reset_after = state.window_start + state.per - arrived
                if state.used >= state.limit:
                    retry_after = round(reset_after, 3)
                    state.records.append((arrived, 429, content, retry_after))
                    return rate_limited(retry_after, state.limit)
                state.used += 1
                headers = {
                    "X-RateLimit-Limit": str(state.limit),
                    "X-RateLimit-Remaining": str(state.limit - state.used),
                    "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                }
            state.records.append((arrived, 200, content, None))
            state.next_id += 1
            message_id = str(state.next_id)
        return JSONResponse(
            {"id": message_id, "type": 0, "content": content, "webhook_id": "1"},
            headers=headers,
        )

    async def control(request: Request) -> Response:
        data = await request.json()
        state.reset(data.get("limit"), float(data.get("per", 2.0)), data.get("script", []))
        return JSONResponse({"ok": True})

    async def records(request: Request) -> Response:
        with state.lock:
            return JSONResponse(list(state.records))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/webhooks/{hook_id}/{token}", execute, methods=["POST"]),
            Route("/_control", control, methods=["POST"]),
            Route("/_control/records", records, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(State()), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
