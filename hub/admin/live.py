"""GET /admin/live: Server-Sent Events that say "the lists changed", at a bounded rate.

The pipeline writes rows from worker processes, so each hub process polls the store's
change cursor (hub/store/changes.py) instead of listening for in-process signals. One
read serves every open stream of the process (the cursor is cached for `interval_s`),
and a stream sends at most one `change` per interval however many rows changed: a
burst of 1,000 events a second becomes two small messages a second, and the browser
(static/admin.js) fetches the page's rows again at most once per message, one fetch at
a time. Open streams are capped; past the cap the answer is 503 and the page's script
tries again ten seconds later.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from hub.runtime import Runtime
from hub.store.changes import Cursor, change_cursor

#: Seconds between cursor reads, and so the least time between two messages of a stream.
INTERVAL_S = 0.5
#: Open streams per hub process.
MAX_STREAMS = 100
#: A comment line this often keeps proxies from closing an idle stream.
HEARTBEAT_S = 15.0
#: A stream ends after this long and the browser reconnects: no stream lives forever.
MAX_STREAM_S = 600.0


class LiveFeed:
    """The process's shared cursor reader and its count of open streams."""

    def __init__(
        self,
        *,
        interval_s: float = INTERVAL_S,
        max_streams: int = MAX_STREAMS,
        heartbeat_s: float = HEARTBEAT_S,
        max_stream_s: float = MAX_STREAM_S,
    ) -> None:
        self.interval_s = interval_s
        self.max_streams = max_streams
        self.heartbeat_s = heartbeat_s
        self.max_stream_s = max_stream_s
        self.streams = 0
        self.reads = 0
        self._cursor: Cursor | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def cursor(self, runtime: Runtime) -> Cursor:
        """The change cursor, read from the store at most once per interval."""
        async with self._lock:
            now = runtime.clock.monotonic()
            if self._cursor is None or now - self._read_at >= self.interval_s:
                self._cursor = await asyncio.to_thread(change_cursor, runtime.store)
                self._read_at = now
                self.reads += 1
            return self._cursor

    async def stream(self, request: Request) -> Response:
        """The stream for an EventSource (`Accept: text/event-stream`); anyone else gets
        the current cursor once, as JSON, instead of a response that never ends."""
        runtime: Runtime = request.state.runtime
        if "text/event-stream" not in request.headers.get("accept", ""):
            return JSONResponse(json.loads(_data(await self.cursor(runtime))))
        if self.streams >= self.max_streams:
            return PlainTextResponse(
                f"{self.max_streams} live streams are open; try again later",
                status_code=503,
                headers={"Retry-After": "10"},
            )
        self.streams += 1
        return StreamingResponse(
            self._messages(request, runtime),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _messages(self, request: Request, runtime: Runtime) -> AsyncIterator[str]:
        try:
            last = await self.cursor(runtime)
            yield f"retry: 2000\nevent: hello\ndata: {_data(last)}\n\n"
            started = quiet_since = runtime.clock.monotonic()
            while runtime.clock.monotonic() - started < self.max_stream_s:
                await runtime.clock.sleep(self.interval_s)
                # Starlette notices a gone client only when a write fails; ask each tick so
                # a closed tab frees its stream (and a stopping server waits for none).
                if await request.is_disconnected():
                    return
                current = await self.cursor(runtime)
                now = runtime.clock.monotonic()
                if current != last:
                    last, quiet_since = current, now
                    yield f"event: change\ndata: {_data(current)}\n\n"
                elif now - quiet_since >= self.heartbeat_s:
                    quiet_since = now
                    yield ": still here\n\n"
        finally:
            self.streams -= 1


def _data(cursor: Cursor) -> str:
    received, processed, delivered = cursor
    return json.dumps({"events": [received, processed], "deliveries": delivered})
