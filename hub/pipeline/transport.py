"""httpx's transport on aiohttp's HTTP/1.1 engine, with httpcore's errors.

hub/pipeline/http.make_client builds the client on it (the lean client, hub/pipeline/lean.py,
sends plain requests on the same aiohttp session). On this transport httpx costs 0.5 ms
of CPU per POST against httpcore's 1.1-1.3 ms (benchmarks/http_client.py).

The transport is wrapped here so that aiohttp's errors reach callers as the httpx
exceptions httpcore would raise: connectors tell "no answer in time" from "cannot connect"
by `httpx.TimeoutException` vs other `httpx.TransportError`s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NoReturn

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as _PackageTransport

__all__ = ["AiohttpTransport", "translate_error"]

#: aiohttp error -> httpx error, most specific first (the first isinstance match wins).
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientOSError, httpx.ReadError),  # reset by peer
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # body cut short
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # malformed response
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (TimeoutError, httpx.TimeoutException),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
)


def translate_error(exc: BaseException, request: httpx.Request) -> NoReturn:
    """Raise the httpx error for `exc` (from aiohttp, or from httpx-aiohttp's own mapping).

    httpx-aiohttp 0.2 maps a refused connection, a DNS failure and a reset to
    `ConnectTimeout` (a TimeoutException), and lets a malformed response escape as
    `aiohttp.ClientResponseError`; the mapping is redone here from the aiohttp cause.
    """
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if isinstance(cause, ValueError) and not isinstance(cause, aiohttp.ClientError):
        # yarl's answer to a URL it cannot parse (bad port, bad host...), as httpx's.
        raise httpx.InvalidURL(f"invalid URL: {type(cause).__name__}") from None
    if cause is not None:
        for source, target in _ERRORS:
            if not isinstance(cause, source):
                continue
            if isinstance(cause, aiohttp.ClientResponseError):
                # Its text quotes the URL and its repr the request headers: maybe secrets.
                raise target(f"malformed response: {cause.message}", request=request) from None
            if isinstance(cause, aiohttp.InvalidURL):
                # Its text is the URL, whose path may be a webhook's secret (as httpx says).
                raise target(
                    "the URL is not an http:// or https:// URL aiohttp can use", request=request
                ) from None
            raise target(str(cause) or type(cause).__name__, request=request) from cause
    raise exc


class _Stream(httpx.AsyncByteStream):
    """The response body, with aiohttp's errors while reading it translated."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner, self._request = inner, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            translate_error(exc, self._request)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            translate_error(exc, self._request)


class AiohttpTransport(_PackageTransport):
    """httpx-aiohttp's transport, with its errors translated as httpcore's would be.

    httpx timeouts map onto aiohttp's: connect -> sock_connect, read -> sock_read, pool ->
    connect (waiting for a pooled connection plus connecting); aiohttp has no write timeout.
    The `sni_hostname` extension becomes aiohttp's `server_hostname` (SNI and certificate
    check), so the webhook connector's pinned requests keep their name. The session does
    not trust the environment: with it aiohttp would read ~/.netrc and add its credentials
    to requests (in a thread, on every request).
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, client=self._new_session)

    def session(self) -> aiohttp.ClientSession:
        """The one aiohttp session, made on first use (inside the loop it is bound to)."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self._new_session()
        return self.client

    def _new_session(self) -> aiohttp.ClientSession:
        """Called on the first request, inside the event loop the session is bound to."""
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry or 15.0,  # None: aiohttp's default
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            translate_error(exc, request)
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _Stream(response.stream, request)
        return response
