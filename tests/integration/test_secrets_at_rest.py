"""Tokens the hub stores are encrypted (store.encryption_keys): the raw SQLite and PostgreSQL
rows hold no plaintext token, and `switchboard secrets rotate` re-encrypts them under a new
key while the hub runs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.cli import main
from hub.config import Settings, load_settings
from hub.errors import StoreError
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.secrets import Secret
from hub.store.crypto import TokenCipher, new_key
from hub.store.notices import list_notices
from hub.store.shared import StoreSharedState
from hub.store.snapshots import StoreSnapshots
from tests.postgres import (  # noqa: F401  (the postgres_url and store_url fixtures)
    postgres_database,
    store_on_each_backend,
)
from tests.support import GITHUB_SECRET, fixture_path, write_config

OLD, NEW = new_key(), new_key()
NOTION = "  notion: {secret: {env: SWITCHBOARD_SECRET_NOTION, optional: true}}"
HANDSHAKE = fixture_path("notion", "webhooks", "verification.json").read_bytes()
NOTION_TOKEN = json.loads(HANDSHAKE)["verification_token"]
SYNC_TOKEN = "CPDAlvWDx70CEPDAlvWDx70CGAU="
CHANNEL_TOKEN = "channel-token-5d1b8e0f7a2c4e6b"


def _config(tmp_path: Path, store_url: str, keys: str) -> tuple[Path, dict[str, str]]:
    config = write_config(tmp_path, extra_sources=NOTION)
    text = config.read_text(encoding="utf-8")
    store_line = next(line for line in text.splitlines() if line.startswith("store:"))
    config.write_text(
        text.replace(
            store_line,
            f'store: {{url: "{store_url}", encryption_keys: [{keys}]}}',
        ),
        encoding="utf-8",
    )
    env = {"SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET, "KEY_OLD": OLD, "KEY_NEW": NEW}
    return config, env


def _settings(config: Path, env: dict[str, str]) -> Settings:
    return load_settings(config, environ=env, plugins=load_plugins())


@pytest.fixture
def hub_with(tmp_path: Path, store_url: str) -> Iterator[object]:
    opened: list[Runtime] = []

    def start(keys: str) -> tuple[Runtime, Path, dict[str, str]]:
        config, env = _config(tmp_path, store_url, keys)
        runtime = build_runtime(_settings(config, env), load_plugins())
        opened.append(runtime)
        return runtime, config, env

    yield start
    for runtime in opened:
        runtime.close()


def _raw_rows(url: str) -> list[str]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return [str(r) for r in conn.execute("SELECT * FROM snapshots")]
        finally:
            conn.close()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        return [str(r) for r in pg.execute("SELECT * FROM snapshots")]


def _store_tokens(runtime: Runtime) -> None:
    """What the hub stores: a Notion handshake through ingress, a calendar's sync token,
    and a shared-state document with a channel token."""
    with TestClient(create_app(runtime, run_worker=False)) as client:
        answer = client.post(
            "/hooks/notion", content=HANDSHAKE, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200
    StoreSnapshots(runtime.store).put(
        "gcal:sync:team@example.com",
        {"sync_token": SYNC_TOKEN, "mode": "initial"},
        version=None,
        now=1.0,
    )
    StoreSharedState(runtime.store).update(
        "gcal-test-channel", lambda _: {"id": "ch-1", "token": CHANNEL_TOKEN}, now=1.0
    )


def _read_back(runtime: Runtime) -> tuple[str, object, object]:
    notices = list_notices(runtime.store, "notion")
    sync = (StoreSnapshots(runtime.store).get("gcal:sync:team@example.com") or {})["sync_token"]
    channel = StoreSharedState(runtime.store).update("gcal-test-channel", lambda d: d or {}, now=2)
    notice = str(notices[0]["notice"])
    # The notice is a sentence for the admin with the token in it.
    return NOTION_TOKEN if NOTION_TOKEN in notice else notice, sync, channel["token"]


def test_stored_tokens_are_encrypted_and_rotate_under_a_new_key_while_the_hub_runs(
    hub_with: object, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = hub_with  # type: ignore[assignment]
    # Given a hub with one key that stored three kinds of token
    old_hub, _, _ = start("{env: KEY_OLD}")  # type: ignore[operator]
    _store_tokens(old_hub)

    # Then no raw row holds one in plain text, and the hub reads them back
    rows = " ".join(_raw_rows(store_url))
    for token in (NOTION_TOKEN, SYNC_TOKEN, CHANNEL_TOKEN):
        assert token not in rows
    assert rows.count("fernet:") == 3
    assert _read_back(old_hub) == (NOTION_TOKEN, SYNC_TOKEN, CHANNEL_TOKEN)
    old_rows = _raw_rows(store_url)

    # When the new key goes first everywhere and `secrets rotate` runs beside the hub
    running, config, env = start("{env: KEY_NEW}, {env: KEY_OLD}")  # type: ignore[operator]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(running, run_worker=False)):
        assert main(["-c", str(config), "secrets", "rotate"]) == 0
        assert _read_back(running) == (NOTION_TOKEN, SYNC_TOKEN, CHANNEL_TOKEN)

    # Then every row changed, still holds no plain token, and the new key alone reads them
    new_rows = _raw_rows(store_url)
    assert not set(new_rows) & set(old_rows)
    assert all(t not in " ".join(new_rows) for t in (NOTION_TOKEN, SYNC_TOKEN, CHANNEL_TOKEN))
    new_only, _, _ = start("{env: KEY_NEW}")  # type: ignore[operator]
    assert _read_back(new_only) == (NOTION_TOKEN, SYNC_TOKEN, CHANNEL_TOKEN)
    new_only.store.cipher = TokenCipher([Secret(OLD)])
    with pytest.raises(StoreError, match=r"key not in store\.encryption_keys"):
        list_notices(new_only.store, "notion")


def test_a_key_that_is_not_a_fernet_key_is_a_config_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, env = _config(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", "{env: KEY_OLD}")
    env["KEY_OLD"] = "not-a-key"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["-c", str(config), "secrets", "rotate"]) == 1
    err = capsys.readouterr().err
    assert "store.encryption_keys[0]: not a Fernet key" in err
    assert "not-a-key" not in err


def test_rotate_without_keys_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    config = write_config(tmp_path)
    assert main(["-c", str(config), "secrets", "rotate"]) == 1
    assert "store.encryption_keys is not set" in capsys.readouterr().err
