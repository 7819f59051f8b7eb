"""One hub with every webhook source enabled, and a signer per source, for the fuzz tests."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from nacl.signing import SigningKey
from starlette.testclient import TestClient
from starlette.types import Message

from hub.app import create_app
from hub.auth.passwords import hash_password
from hub.config import load_settings
from hub.errors import MalformedPayload
from hub.events import Event
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.sources.base import NormalizeContext, RawEvent
from hub.sources.slack_commands import sign as slack_sign
from tests.admin_support import (
    ADMIN_TOKEN,
    ADMIN_YAML,
    PASSWORD,
    admin_env,
    bearer,
    login,
)
from tests.support import GITHUB_SECRET, process_stored, write_config

SOURCES = ("github", "notion", "notion-automation", "discord", "slack")
NOTION_SECRET = "secret_fuzzNotionVerificationTokenNotReal"
AUTOMATION_TOKEN = "fuzz-automation-token-not-real"
SLACK_SECRET = "fuzz-slack-signing-secret-not-real"
DISCORD_KEY = SigningKey(hashlib.sha256(b"fuzz-discord-key-not-real").digest())
MAX_BODY_BYTES = 64 * 1024

EXTRA_SOURCES = """\
  notion: {secret: {env: FUZZ_NOTION_SECRET}}
  notion-automation: {secret: {env: FUZZ_AUTOMATION_TOKEN}}
  discord: {secret: {env: FUZZ_DISCORD_PUBLIC_KEY}}
  slack: {secret: {env: FUZZ_SLACK_SIGNING_SECRET}}"""


class RecordingHandler(logging.Handler):
    """Keeps every record, so a test can look for errors and tracebacks after a request."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Hub:
    runtime: Runtime
    client: TestClient
    logs: RecordingHandler = field(default_factory=RecordingHandler)

    def __repr__(self) -> str:
        return "Hub(...)"  # hypothesis prints the arguments of a failing example

    def now_s(self) -> int:
        return int(self.runtime.clock.now().timestamp())

    def count(self) -> int:
        return self.runtime.store.count_events()

    def post(
        self, source: str, body: bytes, headers: dict[str, str] | list[tuple[bytes, bytes]]
    ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/hooks/{source}", content=body, headers=headers
        )
        return response

    def stream(
        self,
        source: str,
        headers: dict[str, str] | list[tuple[bytes, bytes]],
        chunks: Iterator[bytes],
    ) -> tuple[int, bytes]:
        """POST `chunks` as ASGI body messages pulled one at a time, as a server would.

        The TestClient reads a streamed body whole before calling the app, and re-encodes
        header values as UTF-8, so it can show neither when the app stops reading nor what
        a raw latin-1 header byte does; this calls the app directly, on the client's event
        loop, with the lifespan state a server would pass.
        """
        portal = self.client.portal
        assert portal is not None, "the TestClient must be running (used as a context manager)"
        path = f"/hooks/{source}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": _raw(headers),
            "client": ("fuzz", 50000),
            "server": ("testserver", 80),
            "state": dict(self.client.app_state),
        }
        sent: list[Message] = []

        async def receive() -> Message:
            chunk = next(chunks, None)
            if chunk is None:
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: Message) -> None:
            sent.append(message)

        portal.call(self.client.app, scope, receive, send)
        status = next(int(m["status"]) for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body

    def problems(self, *, since: int = 0) -> list[str]:
        """Log records that show something broke: errors, or anything with a traceback."""
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            for r in self.logs.records[since:]
            if r.levelno >= logging.ERROR or r.exc_info
        ]

    def raw_event(self, event_id: str) -> RawEvent:
        row = self.runtime.store.get_event(event_id)
        assert row is not None, f"event {event_id} was answered as accepted but is not stored"
        return RawEvent(
            id=row.id,
            source=row.source,
            provider_delivery_id=row.provider_delivery_id,
            headers=row.headers,
            body=row.body,
            received_at=datetime.fromtimestamp(row.received_at, UTC),
        )

    def normalize(self, event_id: str) -> list[Event] | MalformedPayload:
        """What the worker's normalize makes of a stored event; MalformedPayload is allowed."""
        raw = self.raw_event(event_id)
        source = self.runtime.sources[raw.source]
        try:
            return source.normalize(raw, NormalizeContext(clock=self.runtime.clock))
        except MalformedPayload as exc:
            return exc

    def views(self, event_id: str) -> list[httpx.Response]:
        """The event as the API (its detail and the newest of the list) and the dashboard
        show it; the detail holds its deliveries."""
        api = bearer(ADMIN_TOKEN)
        return [
            self.client.get(f"/api/v1/events/{event_id}", headers=api),
            self.client.get("/api/v1/events", params={"limit": "1"}, headers=api),
            self.client.get(f"/admin/events/{event_id}"),
        ]

    def process(self, event_id: str) -> str | None:
        """Run the worker's processing step; returns the failure reason it recorded, if any."""
        outcome = process_stored(self.runtime, event_id, lease_s=60)
        return outcome.error if outcome is not None else None


@contextmanager
def running_hub(tmp_path: Path) -> Iterator[Hub]:
    """The hub with lifespan running and no worker: what ingress stores stays put."""
    config = write_config(tmp_path, max_body_bytes=MAX_BODY_BYTES, extra_sources=EXTRA_SOURCES)
    with config.open("a", encoding="utf-8") as out:  # the API and dashboard show what came in
        out.write(ADMIN_YAML.format(hash=hash_password(PASSWORD)))
    environ = {
        "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET,
        "FUZZ_NOTION_SECRET": NOTION_SECRET,
        "FUZZ_AUTOMATION_TOKEN": AUTOMATION_TOKEN,
        "FUZZ_DISCORD_PUBLIC_KEY": DISCORD_KEY.verify_key.encode().hex(),
        "FUZZ_SLACK_SIGNING_SECRET": SLACK_SECRET,
        **admin_env(),
    }
    settings = load_settings(config, environ=environ, plugins=load_plugins())
    runtime = build_runtime(settings, load_plugins())
    root = logging.getLogger()
    handler = RecordingHandler()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with TestClient(create_app(runtime, run_worker=False)) as client:
            assert login(client, token=ADMIN_TOKEN).status_code == 303
            yield Hub(runtime=runtime, client=client, logs=handler)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        runtime.close()


def signed_headers(
    source: str, body: bytes, *, now_s: int, delivery: str = "", event: str = "issues"
) -> dict[str, str]:
    """The headers that make `body` authentic for `source`, as the provider would send them."""
    if source == "github":
        digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or hashlib.sha256(body).hexdigest()[:32],
        }
    if source == "notion":
        digest = hmac.new(NOTION_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Notion-Signature": f"sha256={digest}"}
    if source == "notion-automation":
        return {"X-Switchboard-Token": AUTOMATION_TOKEN}
    timestamp = str(now_s)
    if source == "discord":
        signature = DISCORD_KEY.sign(timestamp.encode() + body).signature.hex()
        return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp}
    if source == "slack":
        return {
            "X-Slack-Signature": slack_sign(SLACK_SECRET, timestamp, body),
            "X-Slack-Request-Timestamp": timestamp,
        }
    raise AssertionError(f"no signer for {source}")


def _raw(headers: dict[str, str] | list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Header bytes as a server hands them to the app: names lower case, values untouched."""
    if isinstance(headers, dict):
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return [(k.lower(), v) for k, v in headers]
