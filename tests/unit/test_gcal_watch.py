"""`switchboard gcal watch`: learn the calendar, then open its push channel to the hub,
signed with the source's secret, and remember it; the scheduler's upkeep renews it, stops
the one it replaced and reconciles the calendar every few minutes.

Google is the fake Calendar API (tests/fakes/gcal.py) served on a real socket: the CLI
builds its own HTTP client, so nothing can be swapped in at the transport.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.cli import main
from hub.clock import FakeClock, SystemClock
from hub.config import load_settings
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.schedule.upkeep import run_upkeep
from hub.store import open_store
from hub.store.queries import InboundFilter, InboundSummary, list_events
from hub.store.snapshots import StoreSnapshots
from tests.fakes.gcal import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    SERVICE_ACCOUNT,
    FakeGoogleCalendar,
    gcal_fixture,
    service_account_key,
)
from tests.servers import serve_in_thread
from tests.support import GITHUB_SECRET, write_config

PLUGINS = load_plugins()
CHANNEL_TOKEN = "gcal-channel-token-not-real"
ADDRESS = "https://hub.example.com/hooks/gcal"
FULL = gcal_fixture("events.list.full-sync.json")
WEEK_MS = 7 * 86_400_000


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGoogleCalendar, str, FakeClock]]:
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    monkeypatch.setenv("TEST_GCAL_CHANNEL_TOKEN", CHANNEL_TOKEN)
    monkeypatch.setenv("TEST_GCAL_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("TEST_GCAL_REFRESH", REFRESH_TOKEN)
    # `gcal watch` runs on the system clock: Google's clock starts there too.
    clock = FakeClock(SystemClock().now())
    fake = FakeGoogleCalendar.with_fixtures()
    fake.now_ms = lambda: int(clock.now().timestamp() * 1000)
    with serve_in_thread(fake.app()) as base:
        yield fake, base, clock


def _config(tmp_path: Path, base: str, reconcile: str = "5m") -> Path:
    return write_config(
        tmp_path,
        extra_sources=f"""  gcal:
    secret: {{env: TEST_GCAL_CHANNEL_TOKEN}}
    client_id: "{CLIENT_ID}"
    client_secret: {{env: TEST_GCAL_CLIENT_SECRET}}
    refresh_token: {{env: TEST_GCAL_REFRESH}}
    api_url: "{base}/calendar/v3"
    token_url: "{base}/token"
    reconcile_interval: {reconcile}""",
    )


def _cli(config: Path, *args: str) -> int:
    return main(["-c", str(config), "gcal", *args])


def _watch(config: Path, calendar: str = "primary") -> int:
    return _cli(config, "watch", "--calendar", calendar, "--address", ADDRESS)


def _watched(tmp_path: Path, base: str, reconcile: str = "5m") -> Path:
    """The config, after `gcal watch` opened a channel for the primary calendar."""
    config = _config(tmp_path, base, reconcile)
    assert _watch(config) == 0
    return config


@contextmanager
def _hub(config: Path, clock: FakeClock) -> Iterator[Runtime]:
    """The hub's runtime on `clock`, closed afterwards."""
    settings = load_settings(config, environ=os.environ, plugins=PLUGINS)
    runtime = build_runtime(settings, PLUGINS, clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()


def _saved(config: Path) -> dict[str, object]:
    store = open_store(f"sqlite:///{config.parent / 'hub.db'}")
    try:
        return StoreSnapshots(store).get("gcal-channels") or {}
    finally:
        store.close()


def test_watch_learns_the_calendar_then_opens_a_channel_signed_with_the_source_secret(
    tmp_path: Path,
    google: tuple[FakeGoogleCalendar, str, FakeClock],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, base, _ = google
    config = _config(tmp_path, base)
    assert _watch(config, "team@example.com") == 0

    # The calendar is listed first: the first push then syncs from this token.
    assert [(s.method, s.path.rsplit("/", 1)[-1]) for s in fake.api_requests()] == [
        ("GET", "events"),
        ("GET", "events"),  # the fixture's second page
        ("POST", "watch"),
    ]
    [watch] = fake.requests_to("/events/watch")
    assert watch.path == "/calendar/v3/calendars/team@example.com/events/watch"
    assert watch.body["type"] == "web_hook"
    assert watch.body["address"] == ADDRESS
    assert watch.body["token"] == CHANNEL_TOKEN  # what the source checks on every push
    assert watch.body["params"] == {"ttl": "604800"}
    [channel] = fake.channels.values()
    until = datetime.fromtimestamp(channel.expiration_ms / 1000, UTC).isoformat()
    assert f"until {until}" in capsys.readouterr().out
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    synced = StoreSnapshots(store).get("gcal:sync:team@example.com")
    store.close()
    assert _saved(config) == {
        "team@example.com": {
            "id": channel.id,
            "resourceId": channel.resource_id,
            "expiration": str(channel.expiration_ms),
            "address": ADDRESS,
            "ttl_s": 604800.0,
            "retired": [],
        }
    }
    assert synced == {"sync_token": FULL["nextSyncToken"], "mode": "initial"}


def test_a_service_account_key_from_a_file_lists_and_watches_as_the_subject(
    tmp_path: Path,
    google: tuple[FakeGoogleCalendar, str, FakeClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base, _ = google
    fake.delegated = {"ada@example.com"}
    key_file = tmp_path / "gcal-sa.json"
    key_file.write_text(service_account_key(f"{base}/token"))
    monkeypatch.setenv("TEST_GCAL_SA_FILE", str(key_file))  # the *_FILE form of the secret
    config = write_config(
        tmp_path,
        extra_sources=f"""  gcal:
    secret: {{env: TEST_GCAL_CHANNEL_TOKEN}}
    service_account: {{env: TEST_GCAL_SA}}
    subject: ada@example.com
    api_url: "{base}/calendar/v3"
""",
    )

    assert _watch(config, "ada@example.com") == 0

    # One assertion for the listing and the watch: the token is cached.
    [claims] = fake.assertions
    assert (claims["iss"], claims["sub"]) == (SERVICE_ACCOUNT, "ada@example.com")
    assert claims["scope"] == "https://www.googleapis.com/auth/calendar.readonly"
    assert claims["aud"] == f"{base}/token"  # the key's token_uri
    assert [s.path.rsplit("/", 1)[-1] for s in fake.api_requests()] == ["events"] * 2 + ["watch"]


def test_a_refused_watch_is_a_clear_error(
    tmp_path: Path,
    google: tuple[FakeGoogleCalendar, str, FakeClock],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, base, _ = google
    config = _config(tmp_path, base)
    fake.fail_next(
        400,
        {
            "error": {
                "code": 400,
                "message": "WebHook callback must be HTTPS: http://hub",
                "errors": [{"reason": "push.webhookUrlNotHttps"}],
            }
        },
        path_suffix="/events/watch",
    )
    assert _watch(config) == 1
    err = capsys.readouterr().err
    assert "events.watch answered 400" in err
    assert CHANNEL_TOKEN not in err
    args = ["watch", "--calendar", "primary", "--address", "http://hub.example.com/hooks/gcal"]
    assert _cli(config, *args) == 1  # not https


def test_watch_refuses_an_id_whose_notifications_could_not_be_read(
    tmp_path: Path,
    google: tuple[FakeGoogleCalendar, str, FakeClock],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, base, _ = google
    config = _config(tmp_path, base)
    for calendar in ("team room@example.com", "team\nroom", "a/b"):
        assert _watch(config, calendar) == 1
        assert f"{calendar!r} is not a calendar id" in capsys.readouterr().err
    assert fake.api_requests() == []


def test_the_hub_renews_a_channel_a_day_before_it_expires_stops_the_old_one_and_stop_forgets_it(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str, FakeClock]
) -> None:
    fake, base, clock = google
    config = _watched(tmp_path, base)
    [first] = fake.channels.values()
    with _hub(config, clock) as runtime:
        clock.advance(5 * 86400)  # two days left: nothing to do yet
        assert run_upkeep(runtime) == 1
        assert len(fake.requests_to("/events/watch")) == 1
        clock.advance(86400 + 60)  # less than a day left: a new channel to the same address
        run_upkeep(runtime)
    renewed = fake.requests_to("/events/watch")[-1].body
    assert (renewed["address"], renewed["token"]) == (ADDRESS, CHANNEL_TOKEN)
    [second] = fake.open_channels("primary")  # the replaced one was stopped at once
    assert second.id != first.id
    assert fake.channels[first.id].stopped
    saved = _saved(config)["primary"]
    assert isinstance(saved, dict)
    assert saved["id"] == second.id
    assert saved["retired"] == [
        {
            "id": first.id,
            "resourceId": first.resource_id,
            "expiration": str(first.expiration_ms),
            "stopped": True,
        }
    ]

    assert _cli(config, "stop", "--calendar", "primary") == 0
    assert [s.body["id"] for s in fake.requests_to("/channels/stop")] == [first.id, second.id]
    assert fake.open_channels("primary") == []
    assert _saved(config) == {}


def test_a_replaced_channel_whose_stop_failed_is_stopped_at_the_next_upkeep(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str, FakeClock]
) -> None:
    fake, base, clock = google
    config = _watched(tmp_path, base)
    [first] = fake.channels.values()
    with _hub(config, clock) as runtime:
        clock.advance(6 * 86400 + 60)
        fake.fail_next(503, path_suffix="/channels/stop")
        run_upkeep(runtime)  # renewed; Google failed the stop
        assert not fake.channels[first.id].stopped
        clock.advance(60)
        run_upkeep(runtime)
    assert [s.status for s in fake.requests_to("/channels/stop")] == [503, 204]
    assert fake.channels[first.id].stopped
    assert len(fake.open_channels("primary")) == 1


def _reconciles(runtime: Runtime) -> list[InboundSummary]:
    """The reconciliation notices upkeep stored (source gcal, like pushes)."""
    page = list_events(runtime.store, InboundFilter(source="gcal"))
    return [e for e in page.items if e.provider_delivery_id.startswith("reconcile:")]


def test_upkeep_raises_one_reconciliation_per_watched_calendar_and_interval(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str, FakeClock]
) -> None:
    _, base, clock = google
    config = _watched(tmp_path, base)
    with _hub(config, clock) as runtime:
        run_upkeep(runtime)
        run_upkeep(runtime)  # a second scheduler, the same interval
        assert len(_reconciles(runtime)) == 1
        clock.advance(300)
        run_upkeep(runtime)
        reconciles = _reconciles(runtime)
        row = runtime.store.get_event(reconciles[0].id)
    assert len(reconciles) == 2
    assert all(r.provider_delivery_id.startswith("reconcile:primary:") for r in reconciles)
    assert row is not None
    assert row.headers["x-goog-resource-state"] == "reconcile"


def test_reconciliation_can_be_turned_off(
    tmp_path: Path, google: tuple[FakeGoogleCalendar, str, FakeClock]
) -> None:
    _, base, clock = google
    config = _watched(tmp_path, base, reconcile="0")
    with _hub(config, clock) as runtime:
        assert run_upkeep(runtime) == 1
        assert _reconciles(runtime) == []
