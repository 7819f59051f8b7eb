"""httpx's client API, with plain requests sent straight through one aiohttp session.

Why: a delivery is one POST, and httpx's models (`build_request`: URL parsing, header
merging, cookies; `send`: the auth and redirect flows; the transport's copy of every
header) cost about as much CPU as aiohttp's whole request. benchmarks/http_client.py
measures each client; `make_client` returns this one for the worker's connectors.

A *plain* request is what the hot connectors send: a method, a URL, and optionally
`params`, `json` or `content`, and `headers`. It goes to aiohttp directly and comes back
as an `httpx.Response` built from aiohttp's answer, with httpx's errors (through the
same translation as the transport's), so connectors keep one API and one set of
exceptions. Anything else (`auth`, `data`, `files`, `extensions` such as the webhook
connector's pinned SNI, a per-request timeout, `stream()`, `send()`) takes httpx's own
path on the same aiohttp session, unchanged.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx
import yarl

from hub.pipeline.transport import AiohttpTransport, translate_error

__all__ = ["LeanClient"]

_UNSET = httpx.USE_CLIENT_DEFAULT
#: Keyword arguments a plain request may carry (the rest take httpx's own path).
_PLAIN = frozenset({"params", "json", "content", "headers"})


def _param_text(value: Any) -> str:
    """httpx's spelling of a query value: JSON-style booleans, None as empty."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


class LeanResponse(httpx.Response):
    """An `httpx.Response` whose `request` is built only if someone asks for it.

    Connectors read the request's URL only to name it in an error; building an
    `httpx.Request` for every successful send is the cost this client exists to avoid.
    """

    _lean_method: str
    _lean_url: str

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = httpx.Request(self._lean_method, self._lean_url)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


class LeanClient(httpx.AsyncClient):
    """`httpx.AsyncClient` whose plain requests skip httpx's per-request machinery."""

    def __init__(
        self, *, timeout: httpx.Timeout, limits: httpx.Limits, headers: Mapping[str, str]
    ) -> None:
        self._transport_lean = AiohttpTransport(limits=limits)
        super().__init__(
            timeout=timeout,
            limits=limits,
            headers=headers,
            follow_redirects=False,
            transport=self._transport_lean,
        )
        self._defaults = {k.lower(): v for k, v in headers.items()}
        # httpx's timeouts as aiohttp's, as the transport maps them (pool -> connect).
        self._lean_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )

    async def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        # httpx's post(), get()... pass every argument, unset ones as None or the default.
        given = {k: v for k, v in kwargs.items() if v is not None and v is not _UNSET}
        if not isinstance(url, str) or not _PLAIN.issuperset(given):
            return await super().request(method, url, **kwargs)
        return await self._plain(method, url, **given)

    async def _plain(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(self._defaults)
        if headers:
            for name, value in headers.items():
                sent[name.lower()] = value
        body: bytes | None = None
        if content is not None:
            body = content.encode() if isinstance(content, str) else content
        elif json is not None:
            # httpx's own encoding, byte for byte (providers and signatures see the same).
            text = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            body = text.encode()
            sent.setdefault("content-type", "application/json")
        try:
            target = yarl.URL(url)
            if params is not None:  # as httpx: `params` replaces the URL's query
                target = target.with_query({k: _param_text(v) for k, v in params.items()})
        except (ValueError, TypeError) as exc:
            translate_error(exc, httpx.Request(method, url))
        session = self._transport_lean.session()
        try:
            async with session.request(
                method,
                target,
                data=body,
                headers=sent,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, as on its own path
                timeout=self._lean_timeout,
            ) as answer:
                payload = await answer.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            translate_error(exc, httpx.Request(method, url))
        response = LeanResponse(
            answer.status,
            headers=answer.raw_headers,
            content=payload,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode(),
            },
        )
        response._lean_method, response._lean_url = method, str(answer.url)
        return response
