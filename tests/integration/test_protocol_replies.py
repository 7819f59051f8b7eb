"""Through the real app: providers get their own protocol answers, not our `{"id": ...}`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import SystemClock
from hub.plugins import load_plugins
from hub.runtime import build_runtime
from tests.support import fixture_path, make_settings, wait_until

KEY = SigningKey.generate()
PUBLIC_KEY = KEY.verify_key.encode().hex()


def test_a_discord_command_is_stored_and_answered_with_a_deferred_response(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path,
        extra_sources="  discord: {secret: {env: TEST_DISCORD_PUBLIC_KEY}}",
        environ={"TEST_DISCORD_PUBLIC_KEY": PUBLIC_KEY},
    )
    runtime = build_runtime(settings, load_plugins())
    body = fixture_path("discord", "interaction.application_command.tasks.json").read_bytes()
    timestamp = str(int(SystemClock().now().timestamp()))
    headers = {
        "X-Signature-Ed25519": KEY.sign(timestamp.encode() + body).signature.hex(),
        "X-Signature-Timestamp": timestamp,
        "Content-Type": "application/json",
    }
    with TestClient(create_app(runtime, run_worker=False)) as client:
        first = client.post("/hooks/discord", content=body, headers=headers)
        again = client.post("/hooks/discord", content=body, headers=headers)
    runtime.close()
    assert first.status_code == 200
    assert first.json()["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, within 3 s
    event_id = first.headers["X-Switchboard-Event-Id"]
    assert runtime.store.get_event(event_id) is not None
    assert again.json()["type"] == 5  # Discord retried: same answer, stored once
    assert again.headers["X-Switchboard-Duplicate"] == "true"


def test_the_notion_handshake_token_is_shown_to_the_admin_and_not_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path,
        extra_sources="  notion: {secret: {env: SWITCHBOARD_SECRET_NOTION, optional: true}}",
    )
    runtime = build_runtime(settings, load_plugins())
    body = fixture_path("notion", "webhooks", "verification.json").read_bytes()
    with (
        caplog.at_level(logging.WARNING, logger="switchboard.ingress"),
        TestClient(create_app(runtime, run_worker=False)) as client,
    ):
        response = client.post(
            "/hooks/notion", content=body, headers={"Content-Type": "application/json"}
        )
    runtime.close()
    token = json.loads(body)["verification_token"]
    assert response.status_code == 200
    assert token not in response.text  # never echoed to whoever sent it
    assert any(token in record.getMessage() for record in caplog.records)
    assert runtime.store.count_events() == 0


def test_a_notion_automation_is_named_by_its_url(tmp_path: Path) -> None:
    rules = """
rules:
  - id: weekly-sync
    on: notion.automation.weekly-sync
    actions:
      - log: {to: inbox, message: "{{ event.type }} {{ event.data.entity.title }}"}
"""
    settings = make_settings(
        tmp_path,
        rules=rules,
        extra_sources="  notion-automation: {secret: {env: TEST_AUTOMATION_SECRET}}",
        environ={"TEST_AUTOMATION_SECRET": "automation-secret-not-real"},
    )
    runtime = build_runtime(settings, load_plugins())
    body = fixture_path("notion", "automation", "send-webhook.json").read_bytes()
    headers = {
        "X-Switchboard-Token": "automation-secret-not-real",
        "Content-Type": "application/json",
        "X-Switchboard-Path": "spoofed",  # only the hub sets this one
    }
    with TestClient(create_app(runtime, run_worker=True)) as client:
        response = client.post(
            "/hooks/notion-automation/weekly-sync", content=body, headers=headers
        )
        assert response.status_code == 200, response.text
        refused = client.post(
            "/hooks/notion-automation/weekly-sync",
            content=body,
            headers={**headers, "X-Switchboard-Token": "wrong"},
        )
        wait_until(lambda: (tmp_path / "inbox.log").exists(), 10, "the automation was routed")
    runtime.close()
    assert refused.status_code == 401
    [line] = (tmp_path / "inbox.log").read_text().splitlines()
    assert json.loads(line)["message"].startswith("notion.automation.weekly-sync ")
