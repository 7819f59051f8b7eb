"""The one factory for outbound HTTP clients: explicit timeouts, pool limits, user agent."""

from __future__ import annotations

import httpx

from hub import __version__

USER_AGENT = f"Switchboard/{__version__} (+https://github.com/switchboard-hub/switchboard)"


def make_client(
    *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Build an AsyncClient; tests pass a transport (MockTransport/respx) instead of patching."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        transport=transport,
    )
