"""Google API credentials shared by the gcal connector and the gcal source: access tokens
from a user's refresh token or from a service account, cached per grant until expiry.

Why here: connectors/ may import only connectors.base and third-party libraries, so a
Google client under hub/ (DESIGN §8's hub/google/) could not serve the connector. This is
a private provider module in connectors/, not a plugin; tests/unit/test_architecture.py
lets hub/sources/_gcal_api.py import exactly this one, so there is one token refresh.

Grants (https://developers.google.com/identity/protocols/oauth2):
- `UserGrant`: `grant_type=refresh_token` with an OAuth client and a user's refresh token.
- `ServiceAccount`: the JWT bearer grant (RFC 7523) with a service account's key; with
  `subject` the account acts as that Workspace user (domain-wide delegation), which is how
  it reaches a user's calendar. The assertion is signed RS256 by google-auth
  (`google.auth.crypt.RSASigner`, `google.auth.jwt.encode`).

The token request itself goes through the worker's shared httpx client: google-auth's own
refresh is blocking I/O (`google.auth.transport.requests`), and its async package
(`google.auth.aio`, 2.63) has no service-account or user credentials. Errors carry Google's
`error` code (`invalid_grant` ...), never a credential or the request body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from google.auth import crypt, jwt

from connectors.base import response_object

__all__ = [
    "DEFAULT_TOKEN_URL",
    "AccessTokens",
    "GoogleCredentials",
    "ServiceAccount",
    "TokenError",
    "UserGrant",
]

DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
#: Refresh this long before Google's `expires_in` runs out, so a request never carries a
#: token that expires on the way.
EXPIRY_MARGIN = timedelta(seconds=60)
#: A service account's assertion may live at most an hour (RFC 7523 as Google applies it).
ASSERTION_LIFETIME_S = 3600
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Token endpoint errors that no retry can fix (revoked consent, wrong client or key).
_PERMANENT = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class TokenError(Exception):
    """No access token: `retryable` says whether trying again later may help."""

    def __init__(self, reason: str, *, retryable: bool, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.after_s = after_s


class GoogleCredentials(Protocol):
    """A grant the token endpoint turns into access tokens."""

    @property
    def token_url(self) -> str: ...

    @property
    def cache_key(self) -> str:
        """Names the grant without holding it (a digest), for caches and rate budgets."""
        ...

    def grant_form(self, now: datetime) -> dict[str, str]:
        """The token request's form; TokenError when the grant cannot be made."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a reason."""
        ...

    def refused_hint(self, code: str) -> str:
        """What to fix when the token endpoint answers `code`."""
        ...


@dataclass(frozen=True, slots=True)
class UserGrant:
    """An OAuth client and the refresh token a user granted it (offline access)."""

    client_id: str
    client_secret: str
    refresh_token: str
    token_url: str = DEFAULT_TOKEN_URL

    @property
    def cache_key(self) -> str:
        return _digest(self.token_url, self.client_id, self.refresh_token)

    def grant_form(self, now: datetime) -> dict[str, str]:
        return {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }

    def secrets(self) -> tuple[str, ...]:
        return (self.client_secret, self.refresh_token)

    def refused_hint(self, code: str) -> str:
        if code == "invalid_grant":
            return "; the refresh token was revoked or has expired: grant access again"
        if code in ("invalid_client", "unauthorized_client"):
            return "; check client_id and client_secret"
        return ""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A service account key, the scopes asked for, and whom it acts as (`subject`)."""

    client_email: str
    private_key: str
    private_key_id: str | None
    scopes: tuple[str, ...]
    subject: str | None = None
    token_url: str = DEFAULT_TOKEN_URL

    @classmethod
    def from_key(
        cls,
        key_json: str,
        *,
        scopes: tuple[str, ...],
        subject: str | None = None,
        token_url: str | None = None,
    ) -> ServiceAccount:
        """From the key file Google Cloud console downloads; ValueError says what to fix
        (and never quotes the key)."""
        try:
            info = json.loads(key_json)
        except ValueError:
            info = None
        fields = ("client_email", "private_key")
        if (
            not isinstance(info, dict)
            or info.get("type") != "service_account"
            or not all(isinstance(info.get(f), str) and info[f] for f in fields)
        ):
            raise ValueError(
                "service_account is not a Google service account key: expected the JSON "
                "key file (type service_account, client_email, private_key) from Google "
                "Cloud console → IAM → Service accounts → Keys"
            )
        key_id = info.get("private_key_id")
        return cls(
            client_email=info["client_email"],
            private_key=info["private_key"],
            private_key_id=key_id if isinstance(key_id, str) else None,
            scopes=scopes,
            subject=subject or None,
            token_url=token_url or str(info.get("token_uri") or DEFAULT_TOKEN_URL),
        )

    @property
    def cache_key(self) -> str:
        scope = " ".join(self.scopes)
        return _digest(self.token_url, self.client_email, self.subject or "", scope)

    def grant_form(self, now: datetime) -> dict[str, str]:
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.client_email,
            "scope": " ".join(self.scopes),
            "aud": self.token_url,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_S,
        }
        if self.subject:
            claims["sub"] = self.subject
        try:
            # google-auth ships py.typed but leaves these two unannotated.
            signer = crypt.RSASigner.from_string(  # type: ignore[no-untyped-call]
                self.private_key, self.private_key_id
            )
        except ValueError as exc:
            raise TokenError(
                "the service account's private_key is not a PEM RSA key; download a new JSON key",
                retryable=False,
            ) from exc
        assertion: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
        return {"grant_type": JWT_BEARER, "assertion": assertion.decode("ascii")}

    def secrets(self) -> tuple[str, ...]:
        return (self.private_key,)

    def refused_hint(self, code: str) -> str:
        if code == "unauthorized_client" and self.subject:
            return (
                f"; allow {self.client_email}'s client id domain-wide delegation for "
                f"{' '.join(self.scopes)} in the Workspace admin console, or drop subject"
            )
        if code == "invalid_grant":
            return "; the key may be deleted or disabled, or subject is not a user of the domain"
        return ""


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    expires_at: datetime


class AccessTokens:
    """Access tokens per grant, refreshed once for all concurrent callers."""

    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self._http = http
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def token(
        self, grant: GoogleCredentials, *, now: datetime, http: httpx.AsyncClient | None = None
    ) -> str:
        """A valid access token for `grant`, refreshed with `http` (default: the client this
        cache was made with) when needed; raises TokenError."""
        key = grant.cache_key
        cached = self._cache.get(key)
        if cached is not None and now < cached.expires_at:
            return cached.token
        # Many sends for one calendar start at once after a restart: one refresh serves all.
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._cache.get(key)
            if cached is not None and now < cached.expires_at:
                return cached.token
            client = http or self._http
            if client is None:
                raise TypeError("AccessTokens.token needs an http client")
            fresh = await self._refresh(client, grant, now)
            self._cache[key] = fresh
            return fresh.token

    def forget(self, grant: GoogleCredentials, token: str) -> None:
        """Drop `token` after Google refused it (401), so the next call refreshes."""
        cached = self._cache.get(grant.cache_key)
        if cached is not None and cached.token == token:
            del self._cache[grant.cache_key]

    async def _refresh(
        self, http: httpx.AsyncClient, grant: GoogleCredentials, now: datetime
    ) -> _Cached:
        form = grant.grant_form(now)
        try:
            response = await http.post(grant.token_url, data=form)
        except httpx.TimeoutException as exc:
            raise TokenError(
                "timed out refreshing the Google access token", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise TokenError(
                f"could not reach the Google token endpoint: {type(exc).__name__}", retryable=True
            ) from exc
        body = response_object(response)
        if response.is_success and isinstance(body.get("access_token"), str):
            lifetime = body.get("expires_in")
            seconds = float(lifetime) if isinstance(lifetime, int | float) else 3600.0
            expires_at = now + timedelta(seconds=seconds) - EXPIRY_MARGIN
            return _Cached(token=body["access_token"], expires_at=expires_at)
        code = str(body.get("error") or f"HTTP {response.status_code}")[:60]
        for secret in grant.secrets():
            code = code.replace(secret, "REDACTED")
        retryable = response.status_code >= 500 or response.status_code == 429
        if code in _PERMANENT:
            retryable = False
        raise TokenError(
            f"Google token endpoint refused the grant ({response.status_code} {code})"
            + grant.refused_hint(code),
            retryable=retryable,
        )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
