"""GET /api/v1/stats: per-minute throughput, end-to-end latency, queue depths, totals."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.api.http import masked_json, query_int
from hub.api.views import iso
from hub.runtime import Runtime
from hub.store import stats


def load_stats(runtime: Runtime, minutes: int) -> dict[str, Any]:
    """The numbers behind /api/v1/stats and the dashboard's overview."""
    store = runtime.store
    now = runtime.clock.now().timestamp()
    since = (now // 60 - (minutes - 1)) * 60
    series = stats.throughput(store, since=since, until=now)
    latency = stats.latency(store, since=since)
    return {
        "window": {"since": iso(since), "until": iso(now), "bucket_s": 60},
        "throughput": [
            {
                "start": iso(b.start),
                "received": b.received,
                "delivered": b.delivered,
                "failed": b.failed,
                "retried": b.retried,
            }
            for b in series
        ],
        "totals": {
            "received": sum(b.received for b in series),
            "delivered": sum(b.delivered for b in series),
            "failed": sum(b.failed for b in series),
            "retried": sum(b.retried for b in series),
        },
        "latency": {"count": latency.count, "p50_s": latency.p50_s, "p99_s": latency.p99_s},
        "queues": stats.backlog(store, now=now),
        "events": {k[0]: n for k, n in stats.count_by(store, "events", "status").items()},
        "deliveries": {k[0]: n for k, n in stats.count_by(store, "deliveries", "status").items()},
    }


async def stats_endpoint(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    minutes = query_int(request, "minutes", 60, low=1, high=1440)
    return masked_json(request, await asyncio.to_thread(load_stats, runtime, minutes))
