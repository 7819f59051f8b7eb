"""Discord's rate limits for a bot: per-route buckets and the global limit.

https://discord.com/developers/docs/topics/rate-limits — each route (method + path with
its major parameter, the channel) belongs to a bucket named by `X-RateLimit-Bucket`;
`X-RateLimit-Remaining: 0` means the bucket is empty for `X-RateLimit-Reset-After`
seconds, and a 429 with `global: true` (or `X-RateLimit-Global`) stops every route.
Knowing this, a send into an empty bucket is retried after the reset without a request,
while other channels and DMs of the same bot go on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import httpx

__all__ = ["Buckets", "route_key"]

_MESSAGE_ID = re.compile(r"(/messages)/[0-9]+")
_ANY_MESSAGE = r"\1/{id}"
_LIMIT = 10_000


def route_key(method: str, url: str) -> str:
    """`POST /channels/123/messages`: the channel is a major parameter, a message id not."""
    path = httpx.URL(url).path
    path = path[path.find("/channels") :] if "/channels" in path else path
    return f"{method} {_MESSAGE_ID.sub(_ANY_MESSAGE, path)}"


class Buckets:
    """What one process has learnt about one bot's buckets; shared by its sends."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._bucket_of: dict[str, str] = {}
        self._empty_until: dict[str, float] = {}
        self._global_until = 0.0

    def wait(self, route: str) -> float | None:
        """Seconds to wait before this route may be called again, or None."""
        now = self._clock()
        with self._lock:
            until = self._global_until
            bucket = self._bucket_of.get(route)
            if bucket is not None:
                until = max(until, self._empty_until.get(bucket, 0.0))
        return until - now if until > now else None

    def learn(self, route: str, response: httpx.Response, retry_after: float | None) -> None:
        """Record the bucket a route is in and when an empty one refills."""
        headers = response.headers
        now = self._clock()
        bucket = headers.get("x-ratelimit-bucket") or route
        with self._lock:
            if len(self._bucket_of) >= _LIMIT:
                self._bucket_of.clear()
                self._empty_until.clear()
            self._bucket_of[route] = bucket
            if response.status_code == 429 and _is_global(response):
                self._global_until = now + (retry_after or 1.0)
                return
            wait = retry_after if response.status_code == 429 else None
            if wait is None and headers.get("x-ratelimit-remaining", "").strip() == "0":
                wait = _float(headers.get("x-ratelimit-reset-after"))
            if wait is not None and 0 < wait < 3600:
                self._empty_until[bucket] = now + wait


def _is_global(response: httpx.Response) -> bool:
    if response.headers.get("x-ratelimit-global", "").lower() == "true":
        return True
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("global") is True


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
