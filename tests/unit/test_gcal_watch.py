"""`switchboard gcal watch`: open a calendar's push channel to the hub, signed with the
source's secret, and remember it so the admin knows when to renew."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx

from hub.cli import main
from hub.clock import FakeClock
from hub.config import load_settings
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.store import open_store
from hub.store.snapshots import StoreSnapshots
from hub.upkeep import run_upkeep
from tests.support import GITHUB_SECRET, write_config

PLUGINS = load_plugins()

API = "https://calendar.test/calendar/v3"
TOKEN_URL = "https://oauth.test/token"
CHANNEL_TOKEN = "gcal-channel-token-not-real"


def _config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        extra_sources=f"""  gcal:
    secret: {{env: TEST_GCAL_CHANNEL_TOKEN}}
    client_id: "123.apps.googleusercontent.com"
    client_secret: {{env: TEST_GCAL_CLIENT_SECRET}}
    refresh_token: {{env: TEST_GCAL_REFRESH}}
    api_url: "{API}"
    token_url: "{TOKEN_URL}\"""",
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    monkeypatch.setenv("TEST_GCAL_CHANNEL_TOKEN", CHANNEL_TOKEN)
    monkeypatch.setenv("TEST_GCAL_CLIENT_SECRET", "client-secret-not-real")
    monkeypatch.setenv("TEST_GCAL_REFRESH", "refresh-not-real")


@respx.mock
@pytest.mark.usefixtures("env")
def test_watch_opens_a_channel_signed_with_the_source_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    respx.post(TOKEN_URL).respond(200, json={"access_token": "ya29.not-real", "expires_in": 3599})
    watch = respx.post(f"{API}/calendars/team%40example.com/events/watch")
    watch.respond(
        200,
        json={
            "kind": "api#channel",
            "id": "01234567-89ab-cdef-0123-456789abcdef",
            "resourceId": "o3hgv1538sdjfh",
            "resourceUri": f"{API}/calendars/team%40example.com/events",
            "expiration": "1795968000000",
        },
    )
    config = _config(tmp_path)
    code = main(
        [
            "-c",
            str(config),
            "gcal",
            "watch",
            "--calendar",
            "team@example.com",
            "--address",
            "https://hub.example.com/hooks/gcal",
        ]
    )
    assert code == 0
    body = json.loads(watch.calls.last.request.content)
    assert body["type"] == "web_hook"
    assert body["address"] == "https://hub.example.com/hooks/gcal"
    assert body["token"] == CHANNEL_TOKEN  # what the source checks on every notification
    assert body["params"] == {"ttl": "604800"}
    assert watch.calls.last.request.headers["authorization"] == "Bearer ya29.not-real"
    assert "until 2026-11-29T16:00:00+00:00" in capsys.readouterr().out  # 1795968000000 ms
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    saved = StoreSnapshots(store).get("gcal-channels")
    store.close()
    assert saved == {
        "team@example.com": {
            "id": "01234567-89ab-cdef-0123-456789abcdef",
            "resourceId": "o3hgv1538sdjfh",
            "expiration": "1795968000000",
            "address": "https://hub.example.com/hooks/gcal",
            "ttl_s": 604800.0,
        }
    }


@respx.mock
@pytest.mark.usefixtures("env")
def test_a_refused_watch_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    respx.post(TOKEN_URL).respond(200, json={"access_token": "ya29.not-real", "expires_in": 3599})
    respx.post(f"{API}/calendars/primary/events/watch").respond(
        400,
        json={
            "error": {
                "code": 400,
                "message": "WebHook callback must be HTTPS: http://hub",
                "errors": [{"reason": "push.webhookUrlNotHttps"}],
            }
        },
    )
    args = ["-c", str(_config(tmp_path)), "gcal", "watch", "--calendar", "primary"]
    code = main([*args, "--address", "https://hub.example.com/hooks/gcal"])
    assert code == 1
    err = capsys.readouterr().err
    assert "events.watch answered 400" in err
    assert CHANNEL_TOKEN not in err
    assert main([*args, "--address", "http://hub.example.com/hooks/gcal"]) == 1  # not https


def _runtime(tmp_path: Path, clock: FakeClock) -> Runtime:
    return build_runtime(
        load_settings(_config(tmp_path), environ=os.environ, plugins=PLUGINS), PLUGINS, clock=clock
    )


def _channel(n: int, expiration_ms: int) -> dict[str, str]:
    return {
        "kind": "api#channel",
        "id": f"channel-{n}",
        "resourceId": "o3hgv1538sdjfh",
        "expiration": str(expiration_ms),
    }


@respx.mock
@pytest.mark.usefixtures("env")
def test_the_hub_renews_a_channel_a_day_before_it_expires_and_stop_forgets_it(
    tmp_path: Path,
) -> None:
    respx.post(TOKEN_URL).respond(200, json={"access_token": "ya29.not-real", "expires_in": 3599})
    watch = respx.post(f"{API}/calendars/primary/events/watch")
    clock = FakeClock(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
    week_ms = int((clock.now() + timedelta(days=7)).timestamp() * 1000)
    watch.mock(
        side_effect=[
            httpx.Response(200, json=_channel(1, week_ms)),
            httpx.Response(200, json=_channel(2, week_ms + 6 * 86_400_000)),
        ]
    )
    args = ["-c", str(_config(tmp_path)), "gcal"]
    assert (
        main(
            [
                *args,
                "watch",
                "--calendar",
                "primary",
                "--address",
                "https://hub.example.com/hooks/gcal",
            ]
        )
        == 0
    )
    runtime = _runtime(tmp_path, clock)
    try:
        clock.advance(5 * 86400)  # two days left: nothing to do yet
        assert run_upkeep(runtime) == 1
        assert watch.call_count == 1
        clock.advance(86400 + 60)  # less than a day left: a new channel to the same address
        run_upkeep(runtime)
        assert watch.call_count == 2
        renewed = json.loads(watch.calls.last.request.content)
        assert renewed["address"] == "https://hub.example.com/hooks/gcal"
        assert renewed["token"] == CHANNEL_TOKEN
        saved = StoreSnapshots(runtime.store).get("gcal-channels") or {}
        assert saved["primary"]["id"] == "channel-2"
    finally:
        runtime.close()
    stop = respx.post(f"{API}/channels/stop").respond(204)
    assert main([*args, "stop", "--calendar", "primary"]) == 0
    assert json.loads(stop.calls.last.request.content) == {
        "id": "channel-2",
        "resourceId": "o3hgv1538sdjfh",
    }
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    assert StoreSnapshots(store).get("gcal-channels") == {}
    store.close()
