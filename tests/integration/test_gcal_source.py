"""Calendar push notifications in, events listed from a fake Calendar API, diffs routed.

Embedded mode with the real worker, as tests/integration/test_notion_end_to_end.py does
for Notion. The gcal plugins are added to the installed ones by hand, so this runs whether
or not the entry points are registered yet.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.testclient import TestClient

from connectors.gcal import GcalConnector
from hub.app import create_app
from hub.clock import FakeClock, SystemClock
from hub.config import load_settings
from hub.errors import MalformedPayload, SignatureError
from hub.events import Event
from hub.plugins import Plugins, load_plugins
from hub.runtime import Runtime, build_runtime
from hub.schedule.upkeep import run_upkeep, upkeep_context
from hub.secrets import Secret
from hub.sources._gcal_channels import CHANNELS_KEY
from hub.sources._gcal_headers import calendar_of
from hub.sources.base import EnrichContext, HookRequest, NormalizeContext, RawEvent, RetryLater
from hub.sources.gcal import GcalSource
from hub.store import Store, open_store
from hub.store.snapshots import StoreSnapshots
from tests.fakes.gcal import (
    CALENDAR_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakeGoogleCalendar,
    gcal_fixture,
)
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)
from tests.servers import serve_in_thread
from tests.support import (
    GITHUB_SECRET,
    REPO,
    fixture_path,
    github_headers,
    wait_until,
    write_config,
)

CHANNEL_TOKEN = gcal_fixture("push", "exists.headers.json")["X-Goog-Channel-Token"]
FIXTURE_CHANNEL = gcal_fixture("push", "events.watch.response.json")
ADDRESS = "https://hub.example.com/hooks/gcal"
WEEK_S = 7 * 86400.0
CHANNEL_SECRET = Secret(CHANNEL_TOKEN, origin="env:SWITCHBOARD_SECRET_GCAL")
FULL = gcal_fixture("events.list.full-sync.json")
INCREMENTAL = gcal_fixture("events.list.incremental.json")
LAUNCH_REVIEW = "5k2n8vq1r4t7u0x3z6b9d2f5h8"
COPY_FREEZE = "1q3s5u7w9y0a2c4e6g8i0k2m4o"
TRIAGE = "9h7f5d3b1z8x6v4t2r0p8n6l4j"
MESSAGE = (
    "{{ event.type }}|{{ event.data.entity.kind }}|{{ event.data.entity.id }}|"
    "{{ event.data.entity.title }}|{{ event.data.changes | list | sort | join(',') }}|"
    "{{ event.data.changes.start.to if 'start' in event.data.changes else '' }}"
)
RULES = f"""
rules:
  - id: calendar-changed
    on: gcal.event.*
    actions:
      - log:
          to: inbox
          message: "{MESSAGE}"
  - id: calendar-unreadable
    on: gcal.calendar.changed
    actions:
      - log:
          to: inbox
          message: "thin|{{{{ event.data.fields.gcal.fetch_error }}}}"
"""
PLUGINS = load_plugins()
GCAL_PLUGINS = Plugins(
    sources={**PLUGINS.sources, "gcal": GcalSource},
    connectors={**PLUGINS.connectors, "gcal": GcalConnector},
)


def _headers(kind: str, number: int, **changes: str) -> dict[str, str]:
    """A push notification's headers, from the fixture, as Google's `number`th message."""
    headers: dict[str, str] = gcal_fixture("push", f"{kind}.headers.json")
    headers.pop("Content-Length")
    return {**headers, "X-Goog-Message-Number": str(number), **changes}


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogleCalendar, str]]:
    fake = FakeGoogleCalendar.with_fixtures()
    with serve_in_thread(fake.app()) as base:
        yield fake, base


def _hub(
    tmp_path: Path, base: str, *, secret: str = CHANNEL_TOKEN, reconcile: str = "0"
) -> Runtime:
    """The hub; reconciliation is off unless asked for: the scheduler in `serve` runs it
    at start-up, and these tests say when a sync runs."""
    source = f"""  gcal:
    secret: {{env: SWITCHBOARD_SECRET_GCAL}}
    client_id: "{CLIENT_ID}"
    client_secret: {{env: TEST_GCAL_CLIENT_SECRET}}
    refresh_token: {{env: TEST_GCAL_REFRESH_TOKEN}}
    api_url: "{base}/calendar/v3"
    token_url: "{base}/token"
    coalesce_window: 0.2s
    reconcile_interval: {reconcile}
    calendars:
      "{CALENDAR_ID}": {{kind: review}}"""
    config = write_config(tmp_path, rules=RULES, extra_sources=source)
    environ = {
        "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET,
        "SWITCHBOARD_SECRET_GCAL": secret,
        "TEST_GCAL_CLIENT_SECRET": CLIENT_SECRET,
        "TEST_GCAL_REFRESH_TOKEN": REFRESH_TOKEN,
    }
    return build_runtime(load_settings(config, environ=environ, plugins=GCAL_PLUGINS), GCAL_PLUGINS)


def _inbox(tmp_path: Path) -> list[str]:
    path = tmp_path / "inbox.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [str(json.loads(line)["message"]) for line in lines]


def _lists(fake: FakeGoogleCalendar) -> list[dict[str, str]]:
    return [s.query for s in fake.api_requests("GET")]


def _synced(runtime: Runtime, token: str) -> bool:
    state = StoreSnapshots(runtime.store).get(f"gcal:sync:{CALENDAR_ID}")
    return state is not None and state.get("sync_token") == token


def _post(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    response: httpx.Response = client.post("/hooks/gcal", content=b"", headers=headers)
    return response


def _with_upkeep_context(
    store: Store, clock: Any, work: Callable[[EnrichContext], Awaitable[Any]]
) -> Any:
    """Run `work` as `switchboard gcal …` and the scheduler's upkeep do (hub/schedule/upkeep.py)."""

    async def run() -> Any:
        async with upkeep_context(store, clock) as ctx:
            return await work(ctx)

    return asyncio.run(run())


def _watch(runtime: Runtime) -> str:
    """`switchboard gcal watch` on the test calendar; the new channel's id."""
    source = runtime.sources["gcal"]
    assert isinstance(source, GcalSource)
    channel = _with_upkeep_context(
        runtime.store,
        runtime.clock,
        lambda ctx: source.watch(ctx, CALENDAR_ID, ADDRESS, CHANNEL_SECRET, WEEK_S),
    )
    return str(channel["id"])


def _remember_fixture_channel(runtime: Runtime) -> None:
    """The store as `switchboard gcal watch` leaves it for the fixture pushes' channel."""
    # Opened a moment ago (the fixture's expiration is past): not due for renewal yet.
    expiration = str(int((SystemClock().now().timestamp() + WEEK_S) * 1000))
    entry = {"id": FIXTURE_CHANNEL["id"], "resourceId": FIXTURE_CHANNEL["resourceId"]}
    doc = {
        CALENDAR_ID: {
            **entry,
            "expiration": expiration,
            "address": ADDRESS,
            "ttl_s": WEEK_S,
            "retired": [],
        }
    }
    StoreSnapshots(runtime.store).put(CHANNELS_KEY, doc, version=None, now=0.0)


@contextmanager
def _first_push(tmp_path: Path, base: str) -> Iterator[tuple[Runtime, TestClient]]:
    """A running hub watching the fixture channel, sent its first change notification
    (message number 2); the runtime is closed afterwards."""
    runtime = _hub(tmp_path, base)
    try:
        _remember_fixture_channel(runtime)
        with TestClient(create_app(runtime, run_worker=True)) as client:
            _post(client, _headers("exists", 2))
            yield runtime, client
    finally:
        runtime.close()


def test_sync_is_acknowledged_and_a_bad_token_is_refused(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    runtime = _hub(tmp_path, base)
    with TestClient(create_app(runtime, run_worker=False)) as client:
        sync = _post(client, _headers("sync", 1))
        forged = _post(client, _headers("exists", 2, **{"X-Goog-Channel-Token": "guess"}))
        missing = _post(client, {"X-Goog-Resource-State": "exists"})
        no_uri = _headers("exists", 3)
        no_uri.pop("X-Goog-Resource-URI")
        unnamed = _post(client, no_uri)
        stored = runtime.store.count_events()
    runtime.close()

    assert (sync.status_code, sync.json()) == (200, {})
    assert forged.status_code == 401
    assert forged.json()["code"] == "bad_signature"
    assert missing.status_code == 401  # no token at all: refused before anything is read
    assert (unnamed.status_code, unnamed.json()["code"]) == (400, "malformed_payload")
    assert stored == 0
    assert fake.seen == []  # ingress never calls Google


def test_the_first_change_after_watch_is_routed_with_its_diff(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    runtime = _hub(tmp_path, base)
    with TestClient(create_app(runtime, run_worker=True)) as client:
        # The watch learns the calendar (a full listing) before the channel opens.
        channel = _watch(runtime)
        assert _synced(runtime, FULL["nextSyncToken"])
        assert _post(client, fake.notification(channel, "sync")).status_code == 200
        # First change: the launch review moves a day and the copy freeze is deleted.
        first = fake.notification(channel)
        assert _post(client, first).status_code == 202
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 10, "both changes were routed")
        # Google repeats a message (same channel and number): a duplicate, not news.
        again = _post(client, first)
        # A later change that touched nothing we compare: no event.
        _post(client, fake.notification(channel))
        wait_until(lambda: len(_lists(fake)) == 4, 10, "the quiet sync ran")
        wait_until(lambda: runtime.store.count_events("received") == 0, 5, "all processed")
    runtime.close()

    assert again.json()["duplicate"] is True
    updated, cancelled = sorted(_inbox(tmp_path), reverse=True)
    assert updated == (
        f"gcal.event.updated|review|{LAUNCH_REVIEW}|Launch post review|end,start|"
        "2026-11-25T11:00:00+01:00"
    )
    assert cancelled == (
        f"gcal.event.cancelled|review|{COPY_FREEZE}|Pricing page copy freeze|status|"
    )
    queries = _lists(fake)
    assert "syncToken" not in queries[0]
    assert queries[1]["pageToken"] == fake.full_pages[0]["nextPageToken"]
    assert queries[2]["syncToken"] == FULL["nextSyncToken"]
    assert queries[3]["syncToken"] == INCREMENTAL["nextSyncToken"]
    assert len(fake.issued) == 1  # one access token, cached across the watch and syncs
    assert len(_inbox(tmp_path)) == 2


def test_reconciliation_routes_a_change_whose_push_never_came_once(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    runtime = _hub(tmp_path, base, reconcile="5m")
    with TestClient(create_app(runtime, run_worker=True)) as client:
        channel = _watch(runtime)
        # The calendar changed, and Google's push was lost. The scheduler's upkeep (what
        # `switchboard scheduler` and the one in `serve` run every minute) syncs anyway.
        assert run_upkeep(runtime) == 1
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 10, "the missed changes were routed")
        run_upkeep(runtime)  # a second scheduler, the same interval: stored once
        # The push arrives after all, late: the change was synced already.
        late = _post(client, fake.notification(channel))
        assert late.status_code == 202
        wait_until(
            lambda: INCREMENTAL["nextSyncToken"] in [q.get("syncToken") for q in _lists(fake)],
            10,
            "the late push's sync ran",
        )
        wait_until(lambda: runtime.store.count_events("received") == 0, 5, "all processed")
    runtime.close()

    assert sorted(line.split("|")[0] for line in _inbox(tmp_path)) == [
        "gcal.event.cancelled",
        "gcal.event.updated",
    ]
    synced_from = [s.query["syncToken"] for s in fake.api_requests("GET") if "syncToken" in s.query]
    assert synced_from[0] == FULL["nextSyncToken"]  # the reconciliation, from the baseline
    assert set(synced_from[1:]) == {INCREMENTAL["nextSyncToken"]}


def test_a_push_from_a_channel_the_hub_did_not_open_is_dropped(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = google
    runtime = _hub(tmp_path, base)
    with TestClient(create_app(runtime, run_worker=True)) as client:
        channel = _watch(runtime)
        # A channel a second scheduler opened (before renewal took a lease), never stored.
        stray = fake.notification(channel)
        stray["X-Goog-Channel-ID"] = "5f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
        with caplog.at_level(logging.WARNING, logger="switchboard.sources.gcal"):
            assert _post(client, stray).status_code == 202
            wait_until(lambda: runtime.store.count_events("received") == 0, 10, "processed")
        assert len(_lists(fake)) == 2  # the watch's listing only: no sync for the stray
        assert _post(client, fake.notification(channel)).status_code == 202
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 10, "the real channel's push routed")
    runtime.close()

    assert "channel 5f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9 is not one this hub has open" in (
        caplog.text
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_schedulers_renewing_at_once_open_one_channel_and_stop_the_old_one(
    backend: str,
    tmp_path: Path,
    google: tuple[FakeGoogleCalendar, str],
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, base = google
    url = (
        f"sqlite:///{tmp_path / 'hub.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    clock = FakeClock(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
    fake.now_ms = lambda: int(clock.now().timestamp() * 1000)
    stores = [open_store(url), open_store(url)]  # two scheduler processes, one database
    first, second = _source(base), _source(base)
    try:
        channel = _with_upkeep_context(
            stores[0],
            clock,
            lambda ctx: first.watch(ctx, CALENDAR_ID, ADDRESS, CHANNEL_SECRET, WEEK_S),
        )
        clock.advance(6 * 86400 + 60)  # less than a day left: both find the renewal due
        fake.hold_first_watch = release = threading.Event()

        def upkeep(source: GcalSource, store: Store) -> Any:
            return _with_upkeep_context(
                store, clock, lambda ctx: source.maintain(ctx, CHANNEL_SECRET)
            )

        racer = threading.Thread(target=upkeep, args=(first, stores[0]))
        racer.start()
        try:
            wait_until(fake.watch_held.is_set, 10, "the first scheduler is renewing")
            with caplog.at_level(logging.INFO, logger="switchboard.sources.gcal"):
                upkeep(second, stores[1])
        finally:
            release.set()
            racer.join(10)
        upkeep(second, stores[1])  # later: the renewal is done, nothing is due
        saved = StoreSnapshots(stores[1]).get(CHANNELS_KEY) or {}
    finally:
        for store in stores:
            store.close()

    assert len(fake.requests_to("/events/watch")) == 2  # the watch and ONE renewal
    [open_one] = fake.open_channels(CALENDAR_ID)
    assert saved[CALENDAR_ID]["id"] == open_one.id != channel["id"]
    assert fake.channels[channel["id"]].stopped  # the replaced channel no longer pushes
    [stop] = fake.requests_to("/channels/stop")
    assert stop.body == {"id": channel["id"], "resourceId": channel["resourceId"]}
    assert saved[CALENDAR_ID]["retired"] == [
        {
            "id": channel["id"],
            "resourceId": channel["resourceId"],
            "expiration": channel["expiration"],
            "stopped": True,
        }
    ]
    assert f"calendar {CALENDAR_ID}: another scheduler is renewing its channel" in caplog.text


def test_an_expired_sync_token_resyncs_without_repeating_old_events(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    with _first_push(tmp_path, base) as (runtime, client):
        wait_until(lambda: _synced(runtime, FULL["nextSyncToken"]), 10, "the full sync ran")
        # Google forgets the token; meanwhile triage was renamed and a new event appeared.
        del fake.incremental[FULL["nextSyncToken"]]
        fake.full_pages = [_full_after_changes(next_sync_token="resynced-token")]
        _post(client, _headers("exists", 3))
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 10, "the resync routed what changed")
        wait_until(lambda: _synced(runtime, "resynced-token"), 5, "the new token was kept")

    lines = sorted(_inbox(tmp_path))
    assert lines[0].startswith("gcal.event.created|review|newevent0001|Kickoff|")
    assert lines[0].split("|")[4] == "attendees,end,start,status,summary"
    assert lines[1] == f"gcal.event.updated|review|{TRIAGE}|Task triage|summary|"
    statuses = [s.status for s in fake.api_requests("GET")]
    assert statuses == [200, 200, 410, 200]
    assert fake.api_requests("GET")[-1].query.get("showDeleted") == "true"


def test_rate_limited_listing_is_retried_after_googles_wait(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    with _first_push(tmp_path, base) as (runtime, client):
        wait_until(lambda: _synced(runtime, FULL["nextSyncToken"]), 10, "the full sync ran")
        fake.fail_next(
            403, gcal_fixture("errors", "403-rateLimitExceeded.json"), {"Retry-After": "1"}
        )
        _post(client, _headers("exists", 3))
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 15, "routed after Google's wait")
    assert [s.status for s in fake.api_requests("GET")][-2:] == [403, 200]


def test_refused_credentials_pass_the_thin_event_on_without_leaking_them(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    fake.refresh_token = "1//another-grant"
    with _first_push(tmp_path, base):
        wait_until(lambda: len(_inbox(tmp_path)) == 1, 10, "the thin event was routed")

    [line] = _inbox(tmp_path)
    assert line.startswith("thin|Google token endpoint refused the grant (400 invalid_grant)")
    log_text = (tmp_path / "inbox.log").read_text()
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, CHANNEL_TOKEN):
        assert secret not in log_text


# --- the source's parts, without the hub ------------------------------------------------


class MemorySnapshots:
    """SnapshotStore in a dict, with the store's version rule."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], str | None]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        found = self.docs.get(key)
        return copy.deepcopy(found[0]) if found else None

    def put(self, key: str, doc: dict[str, Any], *, version: str | None, now: float) -> bool:
        old = self.docs.get(key)
        if old and version and old[1] and version < old[1]:
            return False
        self.docs[key] = (copy.deepcopy(doc), version)
        return True


async def _no_wait(key: str, limits: Sequence[tuple[int, float]]) -> None:
    return None


def _source(base: str = "http://gcal.test") -> GcalSource:
    return GcalSource.from_options(
        {
            "client_id": CLIENT_ID,
            "client_secret": Secret(CLIENT_SECRET),
            "refresh_token": Secret(REFRESH_TOKEN),
            "api_url": f"{base}/calendar/v3",
            "token_url": f"{base}/token",
        }
    )


def _thin(source: GcalSource, number: int) -> Event:
    request = HookRequest(
        source="gcal",
        headers={k.lower(): v for k, v in _headers("exists", number).items()},
        body=b"",
        received_at=datetime(2026, 11, 20, 14, 10, tzinfo=UTC),
    )
    verdict = source.verify(request, Secret(CHANNEL_TOKEN), FakeClock())
    raw = RawEvent(
        id="raw",
        source="gcal",
        provider_delivery_id=verdict.provider_delivery_id,
        headers=request.headers,
        body=b"",
        received_at=request.received_at,
    )
    [event] = source.normalize(raw, NormalizeContext(clock=FakeClock()))
    return event


def test_thin_and_enriched_events_validate_against_the_event_schema() -> None:
    schema = json.loads((REPO / "schemas" / "event.schema.json").read_text())
    fake = FakeGoogleCalendar.with_fixtures()
    source = _source()
    snapshots = MemorySnapshots()
    entry = {k: FIXTURE_CHANNEL[k] for k in ("id", "resourceId", "expiration")}
    snapshots.put(CHANNELS_KEY, {CALENDAR_ID: entry}, version=None, now=0.0)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()))
    ctx = EnrichContext(clock=FakeClock(), http=http, snapshots=snapshots, throttle=_no_wait)

    thin = _thin(source, 2)
    assert asyncio.run(source.enrich([thin], ctx)) == []
    events = asyncio.run(source.enrich([_thin(source, 3)], ctx))

    jsonschema.validate(thin.to_dict(), schema)
    assert thin.id == _thin(source, 2).id  # stable across replays
    assert "x-goog-channel-token" not in json.dumps(thin.to_dict()).lower()
    assert CHANNEL_TOKEN not in json.dumps(thin.to_dict())
    assert [e.type for e in events] == ["gcal.event.updated", "gcal.event.cancelled"]
    for event in events:
        jsonschema.validate(event.to_dict(), schema)
    updated = events[0]
    assert updated.source == f"gcal/{CALENDAR_ID}"
    assert updated.changes["start"] == {
        "from": "2026-11-24T15:00:00+01:00",
        "to": "2026-11-25T11:00:00+01:00",
    }
    assert updated.fields["responses"]["grace@example.com"] == "accepted"
    assert updated.fields["meet_link"] == "https://meet.google.com/abc-defg-hij"
    assert updated.entity.kind == "calendar_event"
    # The cancelled item carries only its id; the snapshot keeps what it was.
    assert events[1].entity.title == "Pricing page copy freeze"
    assert events[1].fields["start"] == "2026-11-27"


def test_a_retryable_failure_raises_retry_later_with_googles_wait() -> None:
    fake = FakeGoogleCalendar.with_fixtures()
    fake.fail_next(503, {}, {"Retry-After": "4"})
    source = _source()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()))
    snapshots = MemorySnapshots()
    entry = {k: FIXTURE_CHANNEL[k] for k in ("id", "resourceId", "expiration")}
    snapshots.put(CHANNELS_KEY, {CALENDAR_ID: entry}, version=None, now=0.0)
    ctx = EnrichContext(clock=FakeClock(), http=http, snapshots=snapshots, throttle=_no_wait)

    with pytest.raises(RetryLater) as caught:
        asyncio.run(source.enrich([_thin(source, 2)], ctx))

    assert caught.value.after_s == 4.0


def test_verify_checks_the_channel_headers() -> None:
    source = _source()
    clock = FakeClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    def verify(headers: dict[str, str], secret: Secret | None = CHANNEL_SECRET) -> Any:
        request = HookRequest(
            source="gcal",
            headers={k.lower(): v for k, v in headers.items()},
            body=b"",
            received_at=clock.now(),
        )
        return source.verify(request, secret, clock)

    verdict = verify(_headers("exists", 7))
    assert verdict.provider_delivery_id == "01234567-89ab-4def-8123-456789abcdef:7"
    assert verdict.store is True
    # The fixture channel expires on 27 Nov 09:00; a day before, the admin is told to renew.
    assert "expires at 2026-11-27T09:00:00+00:00" in verdict.admin_notice
    with pytest.raises(SignatureError, match="no channel token is configured"):
        verify(_headers("exists", 7), None)
    with pytest.raises(MalformedPayload, match="must be a number"):
        verify(_headers("exists", 7, **{"X-Goog-Message-Number": "x"}))
    with pytest.raises(MalformedPayload, match="is not one of"):
        verify(_headers("exists", 7, **{"X-Goog-Resource-State": "deleted"}))
    sync = verify(_headers("sync", 1))
    assert (sync.store, sync.status, sync.reply) == (False, 200, {})


def test_fixture_headers_are_the_real_shapes() -> None:
    assert fixture_path("gcal", "push", "exists.headers.json").is_file()
    assert GcalSource.event_types == (
        "gcal.calendar.changed",
        "gcal.event.created",
        "gcal.event.updated",
        "gcal.event.cancelled",
    )


def _full_after_changes(*, next_sync_token: str) -> dict[str, Any]:
    """The full listing after triage was renamed and a kickoff was added."""
    full = copy.deepcopy(FULL)
    full["nextSyncToken"] = next_sync_token
    for item in full["items"]:
        if item["id"] == TRIAGE:
            item["summary"] = "Task triage"
            item["etag"] = '"3463100000000000"'
            item["updated"] = "2026-11-21T08:00:00.000Z"
    kickoff = copy.deepcopy(full["items"][0])
    kickoff.update(
        id="newevent0001",
        etag='"3463100000000001"',
        summary="Kickoff",
        updated="2026-11-21T08:00:00.000Z",
    )
    kickoff.pop("recurrence")
    full["items"].append(kickoff)
    return full


# --- the connector through the worker ----------------------------------------------------

ISSUE_RULES = """
rules:
  - id: issue-review
    on: [github.issues.opened, github.issues.reopened]
    actions:
      - gcal.create:
          calendar: reviews
          summary: "Triage: {{ event.data.entity.title }}"
          start: "2026-11-24T15:00:00+01:00"
          duration: 30m
          attendees: [ada@example.com]
          meet: true
"""


def test_a_replayed_webhook_updates_the_calendar_event_instead_of_inviting_twice(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str]
) -> None:
    fake, base = google
    destination = f"""
  reviews:
    connector: gcal
    calendar_id: "{CALENDAR_ID}"
    client_id: "{CLIENT_ID}"
    client_secret: {{env: TEST_GCAL_CLIENT_SECRET}}
    refresh_token: {{env: TEST_GCAL_REFRESH_TOKEN}}
    api_url: "{base}/calendar/v3"
    token_url: "{base}/token\""""
    # `tasks_policy` is spliced into the destinations mapping: a sibling destination fits.
    config = write_config(tmp_path, rules=ISSUE_RULES, tasks_policy=destination)
    environ = {
        "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET,
        "TEST_GCAL_CLIENT_SECRET": CLIENT_SECRET,
        "TEST_GCAL_REFRESH_TOKEN": REFRESH_TOKEN,
    }
    settings = load_settings(config, environ=environ, plugins=GCAL_PLUGINS)
    runtime = build_runtime(settings, GCAL_PLUGINS)
    body = fixture_path("github", "issues", "opened.json").read_bytes()
    with TestClient(create_app(runtime, run_worker=True)) as client:
        # GitHub redelivers the same issue event under a new delivery id (a manual redeliver).
        for delivery in ("d-1", "d-2"):
            headers = github_headers(body, event="issues", delivery=delivery)
            assert client.post("/hooks/github", content=body, headers=headers).status_code == 202
            done = 1 if delivery == "d-1" else 2
            wait_until(partial(_delivered, runtime, done), 10, f"{done} gcal deliveries done")
        rows = [r for r in runtime.store.list_deliveries() if r.connector == "gcal"]
    runtime.close()

    assert len(fake.events) == 1
    [event] = fake.events.values()
    assert event["summary"].startswith("Triage: ")
    assert event["hangoutLink"]
    assert [(s.method, s.status) for s in fake.api_requests()] == [
        ("POST", 200),
        ("POST", 409),
        ("PATCH", 200),
    ]
    assert {row.ref for row in rows} == {event["id"]}


def _delivered(runtime: Runtime, count: int) -> bool:
    rows = runtime.store.list_deliveries()
    return sum(1 for r in rows if r.connector == "gcal" and r.status == "delivered") == count


@pytest.mark.parametrize("calendar", ["team%20room", "team%0Aroom", "team%C2%A0room", "a%2Fb"])
def test_a_resource_uri_whose_calendar_id_is_not_one_is_malformed(calendar: str) -> None:
    # Found by atheris: a decoded space or newline ended up in the event's `source`.
    uri = f"https://www.googleapis.com/calendar/v3/calendars/{calendar}/events?alt=json"

    with pytest.raises(MalformedPayload, match="not a calendar id"):
        calendar_of({"x-goog-resource-uri": uri})
