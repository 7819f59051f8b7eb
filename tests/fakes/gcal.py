"""A fake Google Calendar API v3 and OAuth token endpoint, serving the shared fixtures.

Writes (insert, patch, delete) keep events in memory with Google's answers (409 duplicate,
404, 410 deleted). Listing is scripted from the fixtures: a full sync (optionally in pages
linked by `nextPageToken`) and incremental answers by `syncToken`; an unknown or expired
sync token answers 410 fullSyncRequired, as Google does. Push channels: `events.watch`
opens one (400 for a reused channel id or an address that is not https), `channels.stop`
ends it (404 for a channel or resource id it does not know, empty 204 otherwise), and
`notification(...)` gives the headers Google would POST for an open channel. The token
endpoint takes a refresh token or a service account's JWT bearer assertion, whose RS256
signature it checks against the key from `service_account_key()`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.clock import SystemClock
from tests.support import fixture_path

CLIENT_ID = "1234567890-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret-not-real"
REFRESH_TOKEN = "1//fake-refresh-token-not-real"
CALENDAR_ID = "c_3f9a2b7e1d0c4a58b6e2f1a9d8c7b6e5@group.calendar.google.com"
SERVICE_ACCOUNT = "switchboard@acme-hub.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@functools.cache
def _service_account_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_key(token_uri: str = "https://oauth2.googleapis.com/token") -> str:  # noqa: S107
    """A service account JSON key as Google Cloud console downloads it (a test key)."""
    pem = _service_account_private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "acme-hub",
            "private_key_id": "fake-key-id-1",
            "private_key": pem.decode(),
            "client_email": SERVICE_ACCOUNT,
            "client_id": "101234567890123456789",
            "token_uri": token_uri,
        }
    )


def verified_claims(assertion: str) -> dict[str, Any] | None:
    """The claims of an RS256 JWT signed with the test service account's key, else None."""
    try:
        header, payload, signature = assertion.split(".")
        key = _service_account_private_key().public_key()
        key.verify(
            _unb64(signature),
            f"{header}.{payload}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        if json.loads(_unb64(header)).get("alg") != "RS256":
            return None
        claims = json.loads(_unb64(payload))
    except (ValueError, InvalidSignature):
        return None
    return claims if isinstance(claims, dict) else None


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def gcal_fixture(*parts: str) -> dict[str, Any]:
    """A fixture under shared/fixtures/gcal/."""
    data = json.loads(fixture_path("gcal", *parts).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def google_error(status: int, reason: str, message: str, domain: str = "global") -> dict[str, Any]:
    """Google's error body shape (as in fixtures/gcal/errors/)."""
    return {
        "error": {
            "errors": [{"domain": domain, "reason": reason, "message": message}],
            "code": status,
            "message": message,
        }
    }


def paged_full_sync() -> list[dict[str, Any]]:
    """The full sync in two pages: the nextPageToken fixture, then the rest of the items."""
    first = gcal_fixture("events.list.page1-nextPageToken.json")
    full = gcal_fixture("events.list.full-sync.json")
    seen = {item["id"] for item in first["items"]}
    rest = {**full, "items": [i for i in full["items"] if i["id"] not in seen]}
    return [first, rest]


@dataclass
class Seen:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    authorization: str | None


@dataclass
class FakeChannel:
    """A push channel the fake opened with events.watch."""

    id: str
    resource_id: str
    calendar: str
    address: str
    token: str
    expiration_ms: int
    stopped: bool = False
    messages: int = 0


@dataclass
class FakeGoogleCalendar:
    """Calendar API under /calendar/v3, the token endpoint at /token."""

    refresh_token: str = REFRESH_TOKEN
    token_lifetime_s: int = 3599
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Pages of a full sync (no syncToken), linked by their nextPageToken.
    full_pages: list[dict[str, Any]] = field(default_factory=list)
    #: syncToken -> the pages of the incremental answer.
    incremental: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: (status, body, headers) answered to the next API requests, before anything else.
    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    #: (path suffix, answer): answered to the next API request whose path ends so.
    scripted_paths: list[tuple[str, tuple[int, Any, dict[str, str]]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    #: Users the service account may act as (domain-wide delegation); others: 401.
    delegated: set[str] = field(default_factory=set)
    #: Claims of every service-account assertion the token endpoint accepted.
    assertions: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    #: Google's clock, in epoch ms (channel expirations); tests pass their FakeClock's.
    now_ms: Callable[[], int] = field(default=lambda: int(SystemClock().now().timestamp() * 1000))
    #: When set, the first events.watch waits for it (up to 10 s) before answering:
    #: a second scheduler can then race the first one's renewal.
    hold_first_watch: threading.Event | None = None
    #: Set while the first events.watch is held by `hold_first_watch`.
    watch_held: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def with_fixtures(cls) -> FakeGoogleCalendar:
        """Full sync in two pages, then the incremental fixture, then nothing new."""
        fake = cls(full_pages=paged_full_sync())
        full = gcal_fixture("events.list.full-sync.json")
        incremental = gcal_fixture("events.list.incremental.json")
        fake.incremental[full["nextSyncToken"]] = [incremental]
        quiet = {**incremental, "items": []}
        fake.incremental[incremental["nextSyncToken"]] = [quiet]
        return fake

    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        path_suffix: str = "",
    ) -> None:
        """Answer the next API request (whose path ends with `path_suffix`) like this."""
        answer = (status, body if body is not None else {}, headers or {})
        if path_suffix:
            self.scripted_paths.append((path_suffix, answer))
        else:
            self.script.append(answer)

    def api_requests(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.path != "/token" and method in (None, s.method)]

    def requests_to(self, suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(suffix)]

    def open_channels(self, calendar: str) -> list[FakeChannel]:
        """Channels that still push for `calendar` (not stopped, not expired)."""
        now = self.now_ms()
        return [
            c
            for c in self.channels.values()
            if c.calendar == calendar and not c.stopped and c.expiration_ms > now
        ]

    def notification(self, channel_id: str, state: str = "exists") -> dict[str, str]:
        """The headers Google POSTs to the channel's address (as in fixtures/gcal/push/)."""
        with self._lock:
            channel = self.channels[channel_id]
            channel.messages += 1
            number = channel.messages
        return {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Token": channel.token,
            "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/"
            f"{quote(channel.calendar, safe='')}/events?alt=json",
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(number),
        }

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route(
                    "/calendar/v3/calendars/{calendar}/events/watch",
                    self._watch,
                    methods=["POST"],
                ),
                Route("/calendar/v3/channels/stop", self._stop, methods=["POST"]),
                Route(
                    "/calendar/v3/calendars/{calendar}/events",
                    self._collection,
                    methods=["GET", "POST"],
                ),
                Route(
                    "/calendar/v3/calendars/{calendar}/events/{event_id}",
                    self._one,
                    methods=["PATCH", "DELETE", "GET"],
                ),
            ]
        )

    # --- endpoints ---------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, not installed.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") == JWT_BEARER:
            return self._service_account_token(request, form.get("assertion", ""))
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != (
            self.refresh_token
        ):
            body: dict[str, Any] = {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
            return self._answer(request, None, 400, body)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self._answer(request, None, 401, {"error": "invalid_client"})
        return self._issue(request)

    def _service_account_token(self, request: Request, assertion: str) -> Response:
        """Google's checks of a JWT bearer grant, in the answers it gives for each."""
        claims = verified_claims(assertion)
        if claims is None or claims.get("iss") != SERVICE_ACCOUNT:
            body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            return self._answer(request, None, 400, body)
        if claims.get("aud") != str(request.url) or not claims.get("scope"):
            body = {"error": "invalid_grant", "error_description": "Invalid JWT: aud or scope"}
            return self._answer(request, None, 400, body)
        if "sub" in claims and claims["sub"] not in self.delegated:
            body = {
                "error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve access tokens "
                "using this method, or client not authorized for any of the scopes requested.",
            }
            return self._answer(request, None, 401, body)
        with self._lock:
            self.assertions.append(claims)
        return self._issue(request)

    def _issue(self, request: Request) -> Response:
        with self._lock:
            token = f"ya29.fake-access-{len(self.issued) + 1}"
            self.issued.append(token)
        body = {
            "access_token": token,
            "expires_in": self.token_lifetime_s,
            "scope": "https://www.googleapis.com/auth/calendar.events",
            "token_type": "Bearer",
        }
        return self._answer(request, None, 200, body)

    async def _collection(self, request: Request) -> Response:
        payload = await self._json(request)
        if (early := self._early(request, payload)) is not None:
            return early
        if request.method == "GET":
            status, body = self._list(dict(request.query_params))
            return self._answer(request, payload, status, body)
        event_id = str(payload.get("id") or f"fake{len(self.events)}")
        with self._lock:
            if event_id in self.events:
                dup = google_error(409, "duplicate", "The requested identifier already exists.")
                return self._answer(request, payload, 409, dup)
            event = _as_google_event(payload, event_id)
            self.events[event_id] = event
        return self._answer(request, payload, 200, event)

    async def _watch(self, request: Request) -> Response:
        payload = await self._json(request)
        if (early := self._early(request, payload)) is not None:
            return early
        hold = self.hold_first_watch
        if hold is not None:
            self.hold_first_watch = None
            self.watch_held.set()
            await asyncio.to_thread(hold.wait, 10)
        calendar = request.path_params["calendar"]
        channel_id = str(payload.get("id") or "")
        address = str(payload.get("address") or "")
        if payload.get("type") != "web_hook" or not channel_id:
            bad = google_error(400, "required", "Required: id and type web_hook")
            return self._answer(request, payload, 400, bad)
        if not address.startswith("https://"):
            bad = google_error(
                400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
            )
            return self._answer(request, payload, 400, bad)
        ttl_ms = int(float((payload.get("params") or {}).get("ttl") or 604800) * 1000)
        with self._lock:
            if channel_id in self.channels:
                dup = google_error(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
                return self._answer(request, payload, 400, dup)
            channel = FakeChannel(
                id=channel_id,
                resource_id="ret" + hashlib.sha256(calendar.encode()).hexdigest()[:16],
                calendar=calendar,
                address=address,
                token=str(payload.get("token") or ""),
                expiration_ms=self.now_ms() + min(ttl_ms, 604800 * 1000),
            )
            self.channels[channel_id] = channel
        # The shape of fixtures/gcal/push/events.watch.response.json.
        body = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": "https://www.googleapis.com/calendar/v3/calendars/"
            f"{quote(calendar, safe='')}/events?alt=json",
            "token": channel.token,
            "expiration": str(channel.expiration_ms),
        }
        return self._answer(request, payload, 200, body)

    async def _stop(self, request: Request) -> Response:
        payload = await self._json(request)
        if (early := self._early(request, payload)) is not None:
            return early
        channel_id = str(payload.get("id") or "")
        with self._lock:
            channel = self.channels.get(channel_id)
            if (
                channel is None
                or channel.stopped
                or channel.resource_id != payload.get("resourceId")
            ):
                missing = google_error(
                    404, "notFound", f"Channel '{channel_id}' not found for project '1234567890'"
                )
                return self._answer(request, payload, 404, missing)
            channel.stopped = True
        return self._answer(request, payload, 204, None)

    async def _one(self, request: Request) -> Response:
        payload = await self._json(request)
        if (early := self._early(request, payload)) is not None:
            return early
        event_id = request.path_params["event_id"]
        with self._lock:
            event = self.events.get(event_id)
            if event is None:
                return self._answer(
                    request, payload, 404, google_error(404, "notFound", "Not Found")
                )
            if request.method == "DELETE":
                if event["status"] == "cancelled":
                    gone = google_error(410, "deleted", "Resource has been deleted")
                    return self._answer(request, payload, 410, gone)
                event["status"] = "cancelled"
                return self._answer(request, payload, 204, None)
            if request.method == "PATCH":
                merged = _as_google_event({**event, **payload}, event_id)
                merged["sequence"] = int(event.get("sequence", 0)) + 1
                self.events[event_id] = merged
                event = merged
        return self._answer(request, payload, 200, event)

    # --- helpers -----------------------------------------------------------------------

    def _early(self, request: Request, payload: Any) -> Response | None:
        """Scripted answers first, then the bearer token check."""
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
            for i, (suffix, answer) in enumerate(self.scripted_paths):
                if scripted is None and request.url.path.endswith(suffix):
                    scripted = answer
                    del self.scripted_paths[i]
                    break
        if scripted is not None:
            status, body, headers = scripted
            return self._answer(request, payload, status, body, headers)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return self._answer(request, payload, 401, gcal_fixture("errors", "401-authError.json"))
        return None

    def _list(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        sync_token = query.get("syncToken")
        page_token = query.get("pageToken")
        pages = self.incremental.get(sync_token) if sync_token else self.full_pages
        if pages is None:
            return 410, gcal_fixture("errors", "410-fullSyncRequired.json")
        if page_token is None:
            return 200, copy.deepcopy(pages[0])
        for previous, page in itertools.pairwise(pages):
            if previous.get("nextPageToken") == page_token:
                return 200, copy.deepcopy(page)
        return 400, google_error(400, "invalid", "Invalid page token value.")

    def _answer(
        self,
        request: Request,
        payload: Any,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> Response:
        with self._lock:
            self.seen.append(
                Seen(
                    request.method,
                    unquote(request.url.path),
                    dict(request.query_params),
                    payload,
                    status,
                    request.headers.get("authorization"),
                )
            )
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    @staticmethod
    async def _json(request: Request) -> Any:
        raw = await request.body()
        if not raw or request.headers.get("content-type", "").startswith("application/x-www"):
            return {}
        return json.loads(raw)


def _as_google_event(body: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The stored event: the request's fields on top of the insert fixture's metadata."""
    template = gcal_fixture("events.insert.response.json")
    event = {
        key: template[key]
        for key in ("kind", "etag", "created", "updated", "creator", "organizer", "eventType")
    }
    event.update({k: v for k, v in body.items() if k != "conferenceData"})
    event["id"] = event_id
    event.setdefault("status", "confirmed")
    event["htmlLink"] = f"https://www.google.com/calendar/event?eid={event_id}"
    event["attendees"] = [
        {"email": a["email"], "responseStatus": a.get("responseStatus", "needsAction")}
        for a in body.get("attendees", [])
    ]
    request = (body.get("conferenceData") or {}).get("createRequest")
    if request:
        conference = copy.deepcopy(template["conferenceData"])
        conference["createRequest"] = {**request, "status": {"statusCode": "success"}}
        event["conferenceData"] = conference
        event["hangoutLink"] = template["hangoutLink"]
    return event
