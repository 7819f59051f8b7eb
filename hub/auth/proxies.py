"""Who the client is: the peer's address, or what a trusted proxy says in X-Forwarded-For.

Only proxies named in `server.trusted_proxies` are believed; by default none is, so a
client cannot pick its own address (and with it a fresh login-throttle budget) by sending
the header. uvicorn's own header handling is switched off (`SERVER_OPTIONS`): it trusts
127.0.0.1 by default, which let any local client, or anything a local proxy passes the
header through for, name its address freely.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: uvicorn settings every `switchboard serve` uses: the hub resolves forwarded headers.
SERVER_OPTIONS: dict[str, object] = {"proxy_headers": False}


def parse_proxies(values: Sequence[str]) -> tuple[Network, ...]:
    """`["10.0.0.5", "10.1.0.0/16"]` → networks; ValueError names the bad entry."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(
                f"'{value}' is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from exc
    return tuple(out)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The rightmost address in the chain that is not a trusted proxy.

    Each proxy appends the address it got the request from, so entries left of the last
    untrusted one were written by the client and prove nothing.
    """
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class TrustedProxies:
    """ASGI middleware: rewrites `scope["client"]` from X-Forwarded-For sent by a trusted proxy."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client:
            forwarded = Headers(scope=scope).get("x-forwarded-for")
            address = client_address(str(client[0]), forwarded, self.trusted)
            if address != client[0]:
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)
