"""Reading a Google Calendar for the gcal source: events.list pages, push channels.

Docs: https://developers.google.com/workspace/calendar/api/v3/reference/events/list.
httpx only (the worker's shared client): google-api-python-client does blocking I/O.
Access tokens (a user's refresh token or a service account) come from
connectors/_google.py, the one Google token client the gcal connector uses too.
Errors never carry a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from connectors._google import DEFAULT_TOKEN_URL, AccessTokens, GoogleCredentials, TokenError
from connectors.base import replace_lone_surrogates
from hub.sources.base import EnrichContext

__all__ = ["API_URL", "SCOPE", "TOKEN_URL", "ApiFailure", "CalendarReader", "SyncTokenGone"]

API_URL = "https://www.googleapis.com/calendar/v3"
TOKEN_URL = DEFAULT_TOKEN_URL
#: What a service account asks for: listing and watching events, nothing written.
SCOPE = "https://www.googleapis.com/auth/calendar.readonly"
#: Calendar's default quota is per user per minute; ten a second stays inside it.
GCAL_BUDGET: tuple[tuple[int, float], ...] = ((10, 1.0),)
#: A listing longer than this many pages is a provider loop, not a calendar.
MAX_PAGES = 400
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


class CalendarReader:
    """Lists a calendar's events with one cached access token per grant."""

    def __init__(self, credentials: GoogleCredentials, api_url: str = API_URL) -> None:
        self._credentials = credentials
        self._api_url = api_url.rstrip("/")
        #: One cache whichever client refreshes (the worker's, or the CLI's for a watch).
        self._tokens = AccessTokens()

    @property
    def budget_key(self) -> str:
        """Names the grant for the shared rate budget without holding a credential."""
        return "gcal-api:" + self._credentials.cache_key[:16]

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
            await ctx.throttle(self.budget_key, GCAL_BUDGET)
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
        await ctx.throttle(self.budget_key, GCAL_BUDGET)
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
        await ctx.throttle(self.budget_key, GCAL_BUDGET)
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
        try:
            token = await self._tokens.token(self._credentials, now=now, http=ctx.http)
            if fresh:
                self._tokens.forget(self._credentials, token)
                token = await self._tokens.token(self._credentials, now=now, http=ctx.http)
        except TokenError as exc:
            raise ApiFailure(exc.reason, retryable=exc.retryable, after_s=exc.after_s) from exc
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
