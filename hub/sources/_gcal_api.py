"""Reading a Google Calendar for the gcal source: events.list pages and OAuth tokens.

Docs: https://developers.google.com/workspace/calendar/api/v3/reference/events/list and
https://developers.google.com/identity/protocols/oauth2/web-server#offline (refresh).
httpx only (the worker's shared client): google-api-python-client does blocking I/O.
Only the refresh-token grant exists; service accounts need an RS256-signed JWT, and
`cryptography` is not a dependency yet. Errors never carry a credential.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import replace_lone_surrogates
from hub.secrets import Secret
from hub.sources.base import EnrichContext

__all__ = ["API_URL", "TOKEN_URL", "ApiFailure", "CalendarReader", "Grant", "SyncTokenGone"]

API_URL = "https://www.googleapis.com/calendar/v3"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
#: Calendar's default quota is per user per minute; ten a second stays inside it.
GCAL_BUDGET: tuple[tuple[int, float], ...] = ((10, 1.0),)
#: A listing longer than this many pages is a provider loop, not a calendar.
MAX_PAGES = 400
#: Refresh this long before Google's `expires_in`, so no request carries a dying token.
EXPIRY_MARGIN = timedelta(seconds=60)
_RATE_LIMITED = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class SyncTokenGone(Exception):
    """Google answered 410: the sync token expired; a full sync is required."""


class ApiFailure(Exception):
    """A listing failed; `retryable` decides between RetryLater and a recorded error."""

    def __init__(self, message: str, *, retryable: bool, after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.after_s = after_s


@dataclass(frozen=True, slots=True)
class Grant:
    """OAuth client + refresh token (offline access) the worker reads calendars with."""

    client_id: str
    client_secret: Secret
    refresh_token: Secret
    token_url: str = TOKEN_URL

    @property
    def budget_key(self) -> str:
        """Names the grant for the shared rate budget without holding the token."""
        digest = hashlib.sha256(f"{self.client_id}\x1f{self.refresh_token.reveal()}".encode())
        return "gcal-api:" + digest.hexdigest()[:16]


class CalendarReader:
    """Lists a calendar's events with one cached access token per grant."""

    def __init__(self, grant: Grant, api_url: str = API_URL) -> None:
        self._grant = grant
        self._api_url = api_url.rstrip("/")
        self._token: tuple[str, datetime] | None = None
        self._lock: asyncio.Lock | None = None

    async def list_events(
        self, ctx: EnrichContext, calendar: str, sync_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every page: the changes since `sync_token`, or (None) all events; + next token.

        Raises SyncTokenGone (410 on a sync token) and ApiFailure.
        """
        url = f"{self._api_url}/calendars/{quote(calendar, safe='')}/events"
        query: dict[str, str] = {"maxResults": "250"}
        if sync_token:
            query["syncToken"] = sync_token
        else:
            # A full sync after a 410 must see deletions to report them (guides/sync).
            query["showDeleted"] = "true"
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            await ctx.throttle(self._grant.budget_key, GCAL_BUDGET)
            page = await self._page(ctx, url, query)
            items += [i for i in page.get("items") or [] if isinstance(i, dict)]
            page_token = page.get("nextPageToken")
            if not isinstance(page_token, str) or not page_token:
                next_sync = page.get("nextSyncToken")
                return items, next_sync if isinstance(next_sync, str) else None
            query["pageToken"] = page_token
        raise ApiFailure(f"events.list gave more than {MAX_PAGES} pages", retryable=False)

    async def watch(
        self,
        ctx: EnrichContext,
        calendar: str,
        *,
        address: str,
        channel_token: str,
        channel_id: str,
        ttl_s: float,
    ) -> dict[str, Any]:
        """events.watch: a push channel to `address` (the hub's /hooks/gcal), signed with
        `channel_token` (X-Goog-Channel-Token, checked by the source). Google's answer:
        {id, resourceId, resourceUri, expiration (epoch ms)}. Channels cannot be extended,
        so renewing is watching again before `expiration`."""
        url = f"{self._api_url}/calendars/{quote(calendar, safe='')}/events/watch"
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": channel_token,
            "params": {"ttl": str(int(ttl_s))},
        }
        await ctx.throttle(self._grant.budget_key, GCAL_BUDGET)
        token = await self._access_token(ctx, fresh=False)
        response = await ctx.http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        answer = _json(response)
        if not response.is_success:
            reason, message = _error_of(answer)
            raise ApiFailure(
                f"events.watch answered {response.status_code} {message} ({reason or 'no reason'})",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        return answer

    async def stop(self, ctx: EnrichContext, *, channel_id: str, resource_id: str) -> None:
        """channels.stop; a channel Google no longer knows (404) is already stopped."""
        await ctx.throttle(self._grant.budget_key, GCAL_BUDGET)
        token = await self._access_token(ctx, fresh=False)
        response = await ctx.http.post(
            f"{self._api_url}/channels/stop",
            json={"id": channel_id, "resourceId": resource_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        if not response.is_success and response.status_code != 404:
            reason, message = _error_of(_json(response))
            raise ApiFailure(
                f"channels.stop answered {response.status_code} {message} ({reason or '-'})",
                retryable=response.status_code >= 500,
            )

    async def _page(self, ctx: EnrichContext, url: str, query: Mapping[str, str]) -> dict[str, Any]:
        """One page; a 401 refreshes the access token once."""
        try:
            response = await self._get(ctx, url, query, fresh=False)
            if response.status_code == 401:
                response = await self._get(ctx, url, query, fresh=True)
        except httpx.TimeoutException as exc:
            raise ApiFailure("timed out calling Google", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ApiFailure(
                f"could not reach Google: {type(exc).__name__}", retryable=True
            ) from exc
        body = _json(response)
        if response.is_success:
            return body
        status = response.status_code
        reason, message = _error_of(body)
        if status == 410 and "syncToken" in query:
            raise SyncTokenGone(message)
        retryable = (
            status in (408, 429) or status >= 500 or (status == 403 and reason in _RATE_LIMITED)
        )
        raise ApiFailure(
            f"events.list answered {status} {message} ({reason or 'no reason given'})",
            retryable=retryable,
            after_s=_retry_after(response, ctx.clock.now()),
        )

    async def _get(
        self, ctx: EnrichContext, url: str, query: Mapping[str, str], *, fresh: bool
    ) -> httpx.Response:
        token = await self._access_token(ctx, fresh=fresh)
        headers = {"Authorization": f"Bearer {token}"}
        return await ctx.http.get(url, params=dict(query), headers=headers)

    async def _access_token(self, ctx: EnrichContext, *, fresh: bool) -> str:
        """The cached token, refreshed near expiry or after a 401 (`fresh`)."""
        now = ctx.clock.now()
        if self._lock is None:  # made lazily: it belongs to the worker's event loop
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is not None and not fresh and now < self._token[1]:
                return self._token[0]
            grant = self._grant
            form = {
                "grant_type": "refresh_token",
                "client_id": grant.client_id,
                "client_secret": grant.client_secret.reveal(),
                "refresh_token": grant.refresh_token.reveal(),
            }
            response = await ctx.http.post(grant.token_url, data=form)
            body = _json(response)
            token = body.get("access_token")
            if not response.is_success or not isinstance(token, str):
                code = body.get("error") if isinstance(body.get("error"), str) else "no error"
                raise ApiFailure(
                    f"the token endpoint refused the refresh ({response.status_code} {code}); "
                    "check client_id, client_secret and refresh_token",
                    retryable=response.status_code >= 500 or response.status_code == 429,
                )
            lifetime = body.get("expires_in")
            seconds = float(lifetime) if isinstance(lifetime, int | float) else 3600.0
            self._token = (token, now + timedelta(seconds=seconds) - EXPIRY_MARGIN)
            return token


def _retry_after(response: httpx.Response, now: datetime) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds()) if when and when.tzinfo else None


def _error_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """(first `errors[].reason`, `message`) of a Google error body."""
    error = body.get("error")
    if not isinstance(error, Mapping):
        return "", "without an error body"
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    reason = str(first.get("reason") or "") if isinstance(first, Mapping) else ""
    return reason, str(error.get("message") or "")[:300]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = replace_lone_surrogates(response.json())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
