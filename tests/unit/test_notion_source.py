"""NotionSource and NotionAutomationSource over the real Notion shapes, and the page fetcher.

The fetcher runs against tests/fakes/notion.py served by uvicorn on a real socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from connectors.base import Destination
from hub.clock import FakeClock
from hub.errors import MalformedPayload, SignatureError
from hub.events import Event
from hub.notion.client import HttpPageFetcher, PermanentFetchError, RetryableFetchError
from hub.notion.enrich import enrich_page_event
from hub.notion.notices import verification_token_of
from hub.pipeline.http import make_client
from hub.plugins import load_plugins
from hub.rules import load_ruleset, match_rules
from hub.rules.templates import TemplateEngine
from hub.secrets import Secret
from hub.sources._notion_events import _merge_burst
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Verdict
from hub.sources.notion import NotionSource
from hub.sources.notion_automation import NotionAutomationSource
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture
from tests.support import fixture_path

REPO = Path(__file__).resolve().parents[2]
WEBHOOKS = fixture_path("notion", "webhooks")
TOKEN = "secret_fixtureVerificationToken0123456789abcdef"
SECRET = Secret(TOKEN, origin="test")
TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
TASKS_DS = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
LAUNCH_POST = "153104cd-477e-809d-8dc4-ff2d96ae3090"
ADA = "c7c11cca-1d73-471d-9b6e-bdef51470190"
WORKSPACE = "7b1e4f52-3c2a-4d8e-9f10-2a6c5e8d9b01"
VALIDATOR = Draft202012Validator(
    json.loads((REPO / "schemas" / "event.schema.json").read_text(encoding="utf-8")),
    format_checker=FormatChecker(),
)


def _event_files() -> list[Path]:
    return sorted(
        p for p in WEBHOOKS.glob("*.json") if p.stem not in ("verification", "burst-same-page")
    )


def _sign(body: bytes, key: str = TOKEN) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _request(body: bytes, headers: dict[str, str], source: str = "notion") -> HookRequest:
    return HookRequest(source=source, headers=headers, body=body, received_at=FakeClock().now())


def _verify(
    body: bytes,
    signature: str | None = "auto",
    *,
    secret: Secret | None = SECRET,
    source: NotionSource | None = None,
    clock: FakeClock | None = None,
) -> Verdict:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-notion-signature"] = _sign(body) if signature == "auto" else signature
    return (source or NotionSource()).verify(_request(body, headers), secret, clock or FakeClock())


def _raw(body: bytes, provider_delivery_id: str, headers: dict[str, str] | None = None) -> RawEvent:
    return RawEvent(
        id="raw-1",
        source="notion",
        provider_delivery_id=provider_delivery_id,
        headers=headers or {},
        body=body,
        received_at=FakeClock().now(),
    )


def _receive(body: bytes, source: NotionSource | None = None) -> list[Event]:
    """Verify as ingress does, then normalize the stored body as the worker does."""
    src = source or NotionSource()
    verdict = _verify(body, source=src)
    assert verdict.store
    return src.normalize(
        _raw(body, verdict.provider_delivery_id), NormalizeContext(clock=FakeClock())
    )


def _schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]


# --- every integration webhook fixture ---------------------------------------------------


@pytest.mark.parametrize("path", _event_files(), ids=lambda p: p.stem)
def test_every_event_fixture_verifies_and_normalizes_to_one_schema_valid_thin_event(
    path: Path,
) -> None:
    body = path.read_bytes()
    payload = json.loads(body)

    verdict = _verify(body)
    events = NotionSource().normalize(
        _raw(body, verdict.provider_delivery_id), NormalizeContext(clock=FakeClock())
    )

    assert verdict.provider_delivery_id == payload["id"]
    assert (verdict.store, verdict.status) == (True, 200)
    assert len(events) == 1
    document = events[0].to_dict()
    assert _schema_errors(document) == []
    assert document["type"] == f"notion.{payload['type']}"
    assert document["source"] == f"notion/workspace/{WORKSPACE}"
    assert document["subject"] == f"{payload['entity']['type']}/{payload['entity']['id']}"
    assert document["data"]["entity"]["id"] == payload["entity"]["id"]
    assert document["data"]["actor"]["id"] == payload["authors"][0]["id"]
    assert document["data"]["changes"] == {}
    assert document["data"]["fields"]["notion"]["attempt_number"] == payload["attempt_number"]
    assert document["data"]["raw"] == payload


def test_properties_updated_carries_ids_and_updated_property_ids_without_values() -> None:
    body = (WEBHOOKS / "page.properties_updated.json").read_bytes()

    (event,) = _receive(body, NotionSource(kinds={TASKS_DB: "task"}))

    assert event.type == "notion.page.properties_updated"
    assert event.subject == f"page/{LAUNCH_POST}"
    assert event.time.isoformat() == "2026-11-21T10:00:05.379000+00:00"
    assert event.entity.kind == "task"
    assert event.entity.url == "https://www.notion.so/153104cd477e809d8dc4ff2d96ae3090"
    assert event.entity.title is None  # thin: the worker fetches the page for it
    notion = event.fields["notion"]
    assert notion["updated_properties"] == ["%3AUPp", "DbAu", "n%3D%3Fs"]
    assert notion["authors"] == [{"id": ADA, "type": "person"}]
    assert notion["parent_id"] == TASKS_DB
    assert notion["parent_type"] == "database"
    assert set(event.fields) == {"notion"}


def test_a_data_source_parent_maps_to_its_kind_on_api_2025_09_03() -> None:
    body = (WEBHOOKS / "page.properties_updated.api-2025-09-03.json").read_bytes()

    (event,) = _receive(body, NotionSource(kinds={TASKS_DS: "task"}))

    assert event.entity.kind == "task"
    assert event.fields["notion"]["data_source_id"] == TASKS_DS


def test_a_comment_links_to_the_page_it_is_on() -> None:
    (event,) = _receive((WEBHOOKS / "comment.created.json").read_bytes())

    assert event.type == "notion.comment.created"
    assert event.entity.kind == "comment"
    assert event.entity.url == "https://www.notion.so/153104cd477e809d8dc4ff2d96ae3090"
    assert event.fields["notion"]["page_id"] == LAUNCH_POST


def test_a_schema_update_keeps_the_property_changes_notion_sent() -> None:
    (event,) = _receive((WEBHOOKS / "database.schema_updated.json").read_bytes())

    assert event.fields["notion"]["schema_changes"] == [
        {"id": "q~Kt", "name": "Estimate", "action": "created"}
    ]
    assert event.fields["notion"]["updated_properties"] == ["q~Kt"]


def test_a_retry_has_the_same_delivery_and_event_id_as_the_first_attempt() -> None:
    first, *_, retry = json.loads((WEBHOOKS / "burst-same-page.json").read_bytes())
    assert (first["id"], retry["attempt_number"]) == (retry["id"], 2)

    one = _receive(json.dumps(first).encode())
    two = _receive(json.dumps(retry).encode())

    assert _verify(json.dumps(retry).encode()).provider_delivery_id == first["id"]
    assert [e.id for e in one] == [e.id for e in two]


def test_a_coalesced_burst_becomes_the_event_its_first_delivery_would_have_been() -> None:
    deliveries = json.loads((WEBHOOKS / "burst-same-page.json").read_bytes())
    thin = [e for d in deliveries for e in _receive(json.dumps(d).encode())]

    merged = _merge_burst(thin)

    assert merged.id == thin[0].id
    assert merged.type == "notion.page.properties_updated"
    notion = merged.fields["notion"]
    assert notion["updated_properties"] == ["%3AUPp", "DbAu", "n%3D%3Fs"]
    assert notion["coalesced_events"] == [e.id for e in thin]
    assert _schema_errors(merged.to_dict()) == []


def test_a_burst_keeps_every_author_and_block_its_deliveries_named() -> None:
    delivery = json.loads((WEBHOOKS / "page.content_updated.json").read_bytes())
    other = {**delivery, "id": "0b1c2d3e-4f50-4617-8f29-3a4b5c6d7e8f"}
    other["authors"] = [{"id": "d8d22ddb-2e84-482e-8c7f-cef062581201", "type": "person"}]
    other["data"] = {**delivery["data"], "updated_blocks": [{"id": "b-2", "type": "block"}]}
    thin = [e for d in (delivery, other) for e in _receive(json.dumps(d).encode())]

    notion = _merge_burst(thin).fields["notion"]

    first_authors = thin[0].fields["notion"]["authors"]
    assert notion["authors"] == [
        *first_authors,
        {"id": other["authors"][0]["id"], "type": "person"},
    ]
    assert notion["updated_blocks"][-1] == "b-2"


# --- the subscription handshake ----------------------------------------------------------


@pytest.mark.parametrize("secret", [None, SECRET], ids=["before-setup", "token-configured"])
def test_unsigned_verification_request_is_answered_200_and_not_stored(
    secret: Secret | None,
) -> None:
    body = (WEBHOOKS / "verification.json").read_bytes()

    verdict = _verify(body, signature=None, secret=secret)

    assert verdict.store is False
    assert verdict.status == 200
    assert TOKEN not in json.dumps(dict(verdict.reply or {}))
    assert TOKEN not in verdict.provider_delivery_id
    assert verification_token_of(body) == TOKEN


def test_verification_body_is_read_by_the_normalizer_as_nothing() -> None:
    body = (WEBHOOKS / "verification.json").read_bytes()

    assert NotionSource().normalize(_raw(body, "x"), NormalizeContext(clock=FakeClock())) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"verification_token": 42}', id="not-a-string"),
        pytest.param(b'{"verification_token": ""}', id="empty"),
        pytest.param(b'{"verification_token": "a b"}', id="whitespace"),
        pytest.param(json.dumps({"verification_token": "x" * 300}).encode(), id="too-long"),
        pytest.param(b'{"verification_token": "t", "type": "page.created"}', id="event-shaped"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="array"),
    ],
)
def test_unsigned_body_that_is_not_a_handshake_is_rejected_as_unsigned(body: bytes) -> None:
    assert verification_token_of(body) is None
    with pytest.raises(SignatureError) as exc:
        _verify(body, signature=None)
    assert exc.value.status == 401


# --- rejections --------------------------------------------------------------------------


def test_unsigned_event_is_rejected() -> None:
    body = (WEBHOOKS / "page.created.json").read_bytes()

    with pytest.raises(SignatureError, match="X-Notion-Signature"):
        _verify(body, signature=None)


def test_event_signed_with_another_token_is_rejected() -> None:
    body = (WEBHOOKS / "page.created.json").read_bytes()

    with pytest.raises(SignatureError):
        _verify(body, signature=_sign(body, "secret_someOtherToken"))


def test_event_changed_by_one_byte_after_signing_is_rejected() -> None:
    original = (WEBHOOKS / "page.deleted.json").read_bytes()
    tampered = original.replace(b'"attempt_number": 1', b'"attempt_number": 2')
    assert len(tampered) == len(original)
    assert tampered != original

    with pytest.raises(SignatureError):
        _verify(tampered, signature=_sign(original))


def test_signed_event_before_a_token_is_configured_is_rejected() -> None:
    body = (WEBHOOKS / "page.created.json").read_bytes()

    with pytest.raises(SignatureError, match="handshake"):
        _verify(body, secret=None)


@pytest.mark.parametrize("signature", ["sha1=abc", "sha256=", "sha256=" + "é" * 64, "garbage"])
def test_malformed_signature_headers_are_rejected_not_crashed(signature: str) -> None:
    body = (WEBHOOKS / "page.created.json").read_bytes()

    with pytest.raises(SignatureError):
        _verify(body, signature=signature)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b'{"id": "x", "type": "page.created",', "bad_json", id="invalid-json"),
        pytest.param(b'["page.created"]', "bad_json", id="array"),
        pytest.param(b'{"id": "x", "n": NaN}', "bad_json", id="nan"),
        pytest.param(
            b'{"type": "page.created", "entity": {"id": "p", "type": "page"}}',
            "bad_event",
            id="no-id",
        ),
        pytest.param(
            b'{"id": "x", "type": "page", "entity": {"id": "p", "type": "page"}}',
            "bad_event",
            id="type-without-verb",
        ),
        pytest.param(b'{"id": "x", "type": "page.created"}', "bad_event", id="no-entity"),
    ],
)
def test_signed_body_that_is_not_a_notion_event_is_malformed(body: bytes, code: str) -> None:
    with pytest.raises(MalformedPayload) as exc:
        _verify(body)
    assert exc.value.status == 400
    assert exc.value.code == code


def test_events_older_than_the_configured_replay_window_are_refused() -> None:
    body = (WEBHOOKS / "page.created.json").read_bytes()  # 2026-11-20T09:00:01Z
    source = NotionSource(max_age=timedelta(hours=48))
    clock = FakeClock()  # 2026-11-21T10:00Z

    assert _verify(body, source=source, clock=clock).store
    clock.advance(timedelta(hours=48).total_seconds())
    with pytest.raises(SignatureError) as exc:
        _verify(body, source=source, clock=clock)
    assert exc.value.code == "stale_request"


# --- the end-to-end shape rules see ------------------------------------------------------


def test_thin_event_enriched_with_the_fetched_page_matches_the_notion_task_rules(
    tmp_path: Path,
) -> None:
    # Given the thin event, the page before (snapshot) and after (fetched now)
    body = (WEBHOOKS / "page.properties_updated.json").read_bytes()
    (thin,) = _receive(body, NotionSource(kinds={TASKS_DB: "task"}))
    before = notion_fixture("api", "pages", "launch-post.before.json")
    after = notion_fixture("api", "pages", "launch-post.after.json")
    _, snapshot = enrich_page_event(thin, before, previous=None)

    # When the worker enriches it
    event, _ = enrich_page_event(thin, after, previous=snapshot.fields, kinds={TASKS_DB: "task"})

    # Then the task rules see Status → Done and the new assignee
    shutil.copy(REPO / "rules" / "notion-tasks.yaml", tmp_path / "notion-tasks.yaml")
    channels = ("task-notifications", "milestone-updates", "project-updates")
    ruleset = load_ruleset(
        tmp_path,
        connectors=load_plugins().connectors,
        destinations={c: Destination(name=c, connector="discord", options={}) for c in channels},
        engine=TemplateEngine(),
    )
    document = event.to_dict()
    assert _schema_errors(document) == []
    assert [r.id for r in match_rules(ruleset, document)] == ["task-assigned", "task-done"]
    assert document["data"]["actor"]["name"] == "Ada Lovelace"


# --- database automations' "Send webhook" -------------------------------------------------

AUTOMATION = fixture_path("notion", "automation", "send-webhook.json")
AUTOMATION_SECRET = Secret("automation-fixture-not-real", origin="test")


def _automation_verify(
    body: bytes, headers: dict[str, str], source: NotionAutomationSource | None = None
) -> Verdict:
    src = source or NotionAutomationSource()
    return src.verify(_request(body, headers, "notion-automation"), AUTOMATION_SECRET, FakeClock())


def test_send_webhook_call_with_the_secret_header_becomes_an_automation_event() -> None:
    body = AUTOMATION.read_bytes()
    headers = {
        "x-switchboard-token": "automation-fixture-not-real",
        "x-switchboard-automation": "Task Done",
    }
    source = NotionAutomationSource(kinds={TASKS_DB: "task"})

    verdict = _automation_verify(body, headers, source)
    (event,) = source.normalize(
        _raw(body, verdict.provider_delivery_id, headers), NormalizeContext(clock=FakeClock())
    )

    assert verdict.status == 200
    assert verdict.provider_delivery_id == (
        "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b/2f3a4b5c-6d7e-4f8a-9b0c-1d2e3f4a5b6c/"
        "3a4b5c6d-7e8f-4a9b-8c1d-2e3f4a5b6c7d"
    )
    document = event.to_dict()
    assert _schema_errors(document) == []
    assert document["type"] == "notion.automation.task_done"
    assert document["subject"] == f"page/{LAUNCH_POST}"
    assert document["data"]["entity"] == {
        "kind": "task",
        "id": LAUNCH_POST,
        "url": "https://www.notion.so/Write-launch-post-153104cd477e809d8dc4ff2d96ae3090",
        "title": "Write launch post",
    }
    assert document["data"]["actor"] == {
        "id": "d8d22ddb-2e84-482e-8c7f-cef062581201",
        "name": "Grace Hopper",
        "email": "grace@example.com",
    }
    fields = document["data"]["fields"]
    assert fields["Status"] == "Done"
    assert fields["Assignee"] == ["Ada Lovelace", "Grace Hopper"]
    assert fields["Task ID"] == "TASK-41"
    assert fields["notion"]["attempt"] == 1


def test_automation_name_falls_back_to_the_configured_name_then_send_webhook() -> None:
    body = AUTOMATION.read_bytes()
    raw = _raw(body, "d")
    named = NotionAutomationSource(automations={"1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b": "ship"})
    ctx = NormalizeContext(clock=FakeClock())

    assert named.normalize(raw, ctx)[0].type == "notion.automation.ship"
    assert NotionAutomationSource().normalize(raw, ctx)[0].type == "notion.automation.send_webhook"


def test_a_retried_automation_call_keeps_its_provider_delivery_id() -> None:
    payload = json.loads(AUTOMATION.read_bytes())
    headers = {"x-switchboard-token": "automation-fixture-not-real"}
    first = _automation_verify(json.dumps(payload).encode(), headers)
    payload["source"]["attempt"] = 2

    retry = _automation_verify(json.dumps(payload).encode(), headers)

    assert retry.provider_delivery_id == first.provider_delivery_id


def test_a_bearer_token_in_authorization_is_accepted_when_that_header_is_configured() -> None:
    source = NotionAutomationSource(header="Authorization")
    headers = {"authorization": "Bearer automation-fixture-not-real"}

    assert _automation_verify(AUTOMATION.read_bytes(), headers, source).store


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"x-switchboard-token": "wrong"}, id="wrong"),
        pytest.param({"x-switchboard-token": "automation-fixture-not-réal"}, id="non-ascii"),
        pytest.param({"x-other": "automation-fixture-not-real"}, id="other-header"),
    ],
)
def test_automation_call_without_the_right_secret_header_is_rejected(
    headers: dict[str, str],
) -> None:
    with pytest.raises(SignatureError) as exc:
        _automation_verify(AUTOMATION.read_bytes(), headers)
    assert exc.value.status == 401


def test_automation_call_without_a_page_is_malformed() -> None:
    headers = {"x-switchboard-token": "automation-fixture-not-real"}

    with pytest.raises(MalformedPayload):
        _automation_verify(b'{"source": {"type": "automation"}, "data": {}}', headers)


# --- the page fetcher against the fake Notion API ----------------------------------------


@pytest.fixture
def fake(module_notion: tuple[FakeNotion, str]) -> FakeNotion:
    notion = module_notion[0]
    notion.script.clear()
    notion.seen.clear()
    return notion


def _fetch(url: str, call: str, *args: Any, token: str = FAKE_TOKEN, **kwargs: Any) -> Any:
    async def run() -> Any:
        async with make_client(timeout_s=5) as http:
            fetcher = HttpPageFetcher(http, Secret(token, origin="test"), FakeClock(), base_url=url)
            return await getattr(fetcher, call)(*args, **kwargs)

    return asyncio.run(run())


def test_fetch_page_returns_the_page_and_sends_the_notion_version(
    fake: FakeNotion, module_notion: tuple[FakeNotion, str]
) -> None:
    page = _fetch(module_notion[1], "fetch_page", LAUNCH_POST)

    assert page == notion_fixture("api", "pages", "launch-post.before.json")
    assert [(s.path, s.notion_version, s.status) for s in fake.seen] == [
        (f"/v1/pages/{LAUNCH_POST}", "2025-09-03", 200)
    ]


def test_property_names_come_from_the_database_or_the_data_source(
    fake: FakeNotion, module_notion: tuple[FakeNotion, str]
) -> None:
    from_db = _fetch(module_notion[1], "fetch_property_names", database_id=TASKS_DB)
    from_ds = _fetch(module_notion[1], "fetch_property_names", data_source_id=TASKS_DS)

    assert from_db == from_ds
    assert from_db["%3AUPp"] == "Status"
    assert [s.path for s in fake.seen] == [
        f"/v1/databases/{TASKS_DB}",
        f"/v1/data_sources/{TASKS_DS}",
    ]


def test_429_with_retry_after_is_retryable_after_that_many_seconds(
    fake: FakeNotion, module_notion: tuple[FakeNotion, str]
) -> None:
    fake.rate_limit_next("2")

    with pytest.raises(RetryableFetchError) as exc:
        _fetch(module_notion[1], "fetch_page", LAUNCH_POST)

    assert (exc.value.status, exc.value.code, exc.value.after_s) == (429, "rate_limited", 2.0)
    # The next call is served normally: the fake, like Notion, only asked for a pause.
    assert _fetch(module_notion[1], "fetch_page", LAUNCH_POST)["id"] == LAUNCH_POST


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable_without_a_wait_unless_one_is_given(
    fake: FakeNotion, module_notion: tuple[FakeNotion, str], status: int
) -> None:
    fake.fail_next(status)
    fake.fail_next(status, headers={"Retry-After": "7"})

    with pytest.raises(RetryableFetchError) as first:
        _fetch(module_notion[1], "fetch_page", LAUNCH_POST)
    with pytest.raises(RetryableFetchError) as second:
        _fetch(module_notion[1], "fetch_page", LAUNCH_POST)

    assert (first.value.status, first.value.after_s) == (status, None)
    assert second.value.after_s == 7.0


def test_unknown_page_is_a_permanent_404(
    module_notion: tuple[FakeNotion, str], fake: FakeNotion
) -> None:
    with pytest.raises(PermanentFetchError) as exc:
        _fetch(module_notion[1], "fetch_page", "0f0f0f0f-0000-4000-8000-000000000000")

    assert (exc.value.status, exc.value.code) == (404, "object_not_found")


def test_a_wrong_token_is_a_permanent_401_and_never_shows_in_the_error(
    module_notion: tuple[FakeNotion, str], fake: FakeNotion
) -> None:
    with pytest.raises(PermanentFetchError) as exc:
        _fetch(module_notion[1], "fetch_page", LAUNCH_POST, token="ntn_wrong_token_not_real")

    assert (exc.value.status, exc.value.code) == (401, "unauthorized")
    assert "ntn_wrong_token_not_real" not in str(exc.value)


@pytest.mark.parametrize("bad_id", ["../users/me", "", "153104cd?x=1", "a" * 40])
def test_an_id_that_is_not_a_notion_id_is_refused_before_any_request(
    module_notion: tuple[FakeNotion, str], fake: FakeNotion, bad_id: str
) -> None:
    with pytest.raises(PermanentFetchError):
        _fetch(module_notion[1], "fetch_page", bad_id)

    assert fake.seen == []


def test_a_network_failure_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def run() -> None:
        async with make_client(transport=httpx.MockTransport(refuse)) as http:
            await HttpPageFetcher(http, Secret("t", origin="test"), FakeClock()).fetch_page(
                LAUNCH_POST
            )

    with pytest.raises(RetryableFetchError) as exc:
        asyncio.run(run())
    assert exc.value.code == "network"


@pytest.mark.parametrize("source", [NotionSource, NotionAutomationSource])
def test_settings_schemas_are_valid_and_accept_their_examples(source: type[Any]) -> None:
    Draft202012Validator.check_schema(source.settings_schema)
    validator = Draft202012Validator(source.settings_schema)
    for name, spec in source.settings_schema["properties"].items():
        for example in spec.get("examples", []):
            assert list(validator.iter_errors({name: example})) == [], name
