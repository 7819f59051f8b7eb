"""The one factory for outbound HTTP clients: explicit timeouts, pool limits, user agent.

The client is httpx's API on aiohttp's HTTP/1.1 engine. benchmarks/http_client.py,
process CPU per POST to a local sink on this 2-core machine: httpx's own transport
(httpcore) 1.1-1.3 ms sequentially; httpx on the aiohttp transport 0.5 ms; the lean client
(plain requests straight on aiohttp) 0.19 ms; bare aiohttp 0.17-0.2 ms. Tests pass
`transport=` to fake providers at httpx's transport seam.
"""

from __future__ import annotations

import httpx

from hub import __version__
from hub.pipeline.lean import LeanClient

__all__ = ["USER_AGENT", "make_client"]

USER_AGENT = f"Switchboard/{__version__} (+https://github.com/switchboard-hub/switchboard)"


def make_client(
    *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Build an AsyncClient; tests pass a transport (MockTransport/respx) instead of patching.

    Without one it is the lean client (hub/pipeline/lean.py): httpx's API, plain requests
    straight on aiohttp, everything else through httpx on the same aiohttp session.
    """
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    timeout = httpx.Timeout(timeout_s, connect=5.0)
    headers = {"User-Agent": USER_AGENT}
    if transport is None:
        return LeanClient(timeout=timeout, limits=limits, headers=headers)
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        headers=headers,
        follow_redirects=False,
        transport=transport,
    )
