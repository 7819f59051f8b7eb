"""OAuth 2.0 access tokens for Google APIs from a refresh token, cached until expiry.

Docs: https://developers.google.com/identity/protocols/oauth2/web-server#offline
(`POST https://oauth2.googleapis.com/token` with `grant_type=refresh_token`). We call the
token endpoint with the shared httpx client instead of google-auth, whose refresh is
blocking I/O. Service accounts (a JWT bearer grant signed RS256) need `cryptography`,
which is not a dependency yet, so only the refresh-token flow exists for now.

Nothing here ever puts a credential in an error message: errors carry Google's `error`
code (`invalid_grant` ...), never the request body.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

__all__ = [
    "DEFAULT_TOKEN_URL",
    "AccessTokens",
    "OAuthClient",
    "TokenError",
]

DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
#: Refresh this long before Google's `expires_in` runs out, so a request never carries a
#: token that expires on the way.
EXPIRY_MARGIN = timedelta(seconds=60)
#: Token endpoint errors that no retry can fix (revoked consent, wrong client).
_PERMANENT = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class TokenError(Exception):
    """No access token: `retryable` says whether trying again later may help."""

    def __init__(self, reason: str, *, retryable: bool, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.after_s = after_s


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """An OAuth client and the refresh token a user granted it (offline access)."""

    client_id: str
    client_secret: str
    refresh_token: str
    token_url: str = DEFAULT_TOKEN_URL

    @property
    def cache_key(self) -> str:
        """Names the grant without holding it: a digest, never the token itself."""
        material = f"{self.token_url}\x1f{self.client_id}\x1f{self.refresh_token}"
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    expires_at: datetime


class AccessTokens:
    """Access tokens per grant, refreshed once for all concurrent callers."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def token(self, client: OAuthClient, *, now: datetime) -> str:
        """A valid access token for `client`; raises TokenError."""
        key = client.cache_key
        cached = self._cache.get(key)
        if cached is not None and now < cached.expires_at:
            return cached.token
        # Many sends for one calendar start at once after a restart: one refresh serves all.
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._cache.get(key)
            if cached is not None and now < cached.expires_at:
                return cached.token
            fresh = await self._refresh(client, now)
            self._cache[key] = fresh
            return fresh.token

    def forget(self, client: OAuthClient, token: str) -> None:
        """Drop `token` after Google refused it (401), so the next call refreshes."""
        cached = self._cache.get(client.cache_key)
        if cached is not None and cached.token == token:
            del self._cache[client.cache_key]

    async def _refresh(self, client: OAuthClient, now: datetime) -> _Cached:
        form = {
            "grant_type": "refresh_token",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": client.refresh_token,
        }
        try:
            response = await self._http.post(client.token_url, data=form)
        except httpx.TimeoutException as exc:
            raise TokenError(
                "timed out refreshing the Google access token", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise TokenError(
                f"could not reach the Google token endpoint: {type(exc).__name__}", retryable=True
            ) from exc
        body = _json(response)
        if response.is_success and isinstance(body.get("access_token"), str):
            lifetime = body.get("expires_in")
            seconds = float(lifetime) if isinstance(lifetime, int | float) else 3600.0
            expires_at = now + timedelta(seconds=seconds) - EXPIRY_MARGIN
            return _Cached(token=body["access_token"], expires_at=expires_at)
        code = str(body.get("error") or f"HTTP {response.status_code}")
        retryable = response.status_code >= 500 or response.status_code == 429
        if code in _PERMANENT:
            retryable = False
        hint = (
            "; the refresh token was revoked or has expired: grant access again and update it"
            if code == "invalid_grant"
            else "; check client_id and client_secret"
            if code in ("invalid_client", "unauthorized_client")
            else ""
        )
        raise TokenError(
            f"Google token endpoint refused the refresh ({response.status_code} {code}){hint}",
            retryable=retryable,
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
