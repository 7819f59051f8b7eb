"""DiscordConnector against a MockTransport fake of execute-webhook, plus the shared helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import (
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    classify_status,
    parse_retry_after,
    redact_url,
)
from connectors.discord import DiscordConnector
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action

REPO = Path(__file__).resolve().parents[3]
DISCORD_FIXTURES = REPO.parent / "shared" / "fixtures" / "discord"

TOKEN = "tok-secret-abc"
WEBHOOK_URL = f"https://discord.com/api/webhooks/123/{TOKEN}"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MESSAGE_ID = "1573639367942078477"

Handler = Callable[[httpx.Request], httpx.Response]


def _fixture_json(name: str) -> Any:
    path = DISCORD_FIXTURES / name
    if not path.is_file():
        pytest.fail(
            f"Discord fixture {path} is missing: the shared/ directory must sit beside the "
            "repository (shared/fixtures/discord/)",
            pytrace=False,
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture_response(body_name: str, headers_name: str) -> tuple[int, Any, dict[str, str]]:
    """Status, JSON body and real headers of a `*.json` + `*.headers.json` pair."""
    raw_headers = _fixture_json(headers_name)
    headers = {k: str(v) for k, v in raw_headers.items() if not k.startswith("_")}
    return int(raw_headers["_status"]), _fixture_json(body_name), headers


def _destination(**options: Any) -> Destination:
    return Destination(
        name="tasks",
        connector="discord",
        options={"webhook_url": Secret(WEBHOOK_URL, origin="env:DISCORD_WEBHOOK_URL"), **options},
    )


def _context(
    destination: Destination | None, entity_refs: Mapping[str, str] | None = None
) -> DeliveryContext:
    return delivery_context(destination, now=NOW, rule_id="issue-opened", entity_refs=entity_refs)


def _action(**params: Any) -> RenderedAction:
    return rendered_action("discord", "tasks", params, destination_param="channel")


@dataclass
class Sent:
    """What one `send` returned and every request it made."""

    result: SendResult
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def body(self) -> dict[str, Any]:
        assert len(self.requests) == 1
        data = json.loads(self.requests[0].content)
        assert isinstance(data, dict)
        return data


def _send(
    handler: Handler,
    tmp_path: Path,
    *,
    params: Mapping[str, Any] | None = None,
    destination: Destination | None = None,
    use_default_destination: bool = True,
    entity_refs: Mapping[str, str] | None = None,
) -> Sent:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    if destination is None and use_default_destination:
        destination = _destination()
    action = _action(**(params if params is not None else {"content": "Issue #1 opened"}))

    async def run() -> SendResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
            connector = DiscordConnector(ConnectorEnv(http=http, base_dir=tmp_path))
            return await connector.send(action, _context(destination, entity_refs))

    return Sent(asyncio.run(run()), requests)


def _ok_message(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=_fixture_json("webhook.execute.wait-true.message.json"))


def _reply(status: int, *, body: Any = None, text: str = "", headers: Any = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if body is not None:
            return httpx.Response(status, json=body, headers=headers)
        return httpx.Response(status, text=text, headers=headers)

    return handler


def _raise(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


def _route_429(request: httpx.Request) -> httpx.Response:
    status, body, headers = _fixture_response(
        "webhook.execute.429.json", "webhook.execute.429.headers.json"
    )
    return httpx.Response(status, json=body, headers=headers)


def _global_429(request: httpx.Request) -> httpx.Response:
    status, body, headers = _fixture_response("global.429.json", "global.429.headers.json")
    return httpx.Response(status, json=body, headers=headers)


# --- what the answer means ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    handler: Handler
    outcome: str
    after: float | None = None
    ref: str | None = None
    reason_has: str = ""


CASES: dict[str, Case] = {
    "200-message-is-ok-with-its-id": Case(_ok_message, "ok", ref=MESSAGE_ID),
    "204-no-content-is-ok": Case(_reply(204), "ok"),
    "429-route-retries-after-body-retry_after": Case(_route_429, "retry", after=0.524),
    "429-global-retries-after-body-retry_after": Case(_global_429, "retry", after=1.337),
    "429-non-json-retries-after-retry-after-header": Case(
        _reply(429, text="<html>rate limited</html>", headers={"Retry-After": "3"}),
        "retry",
        after=3.0,
    ),
    "500-retries-with-engine-backoff": Case(
        _reply(500, body={"message": "500: Internal Server Error", "code": 0}), "retry"
    ),
    "502-retries-with-engine-backoff": Case(_reply(502, text="Bad Gateway"), "retry"),
    "503-retries-with-engine-backoff": Case(
        _reply(503, text="upstream connect error", headers={"Content-Type": "text/plain"}),
        "retry",
    ),
    "400-fails-with-discord-message": Case(
        _reply(400, body={"message": "Invalid Form Body", "code": 50035}),
        "fail",
        reason_has="Invalid Form Body",
    ),
    "401-fails-with-discord-message": Case(
        _reply(401, body={"message": "401: Unauthorized", "code": 0}),
        "fail",
        reason_has="401: Unauthorized",
    ),
    "403-fails-with-discord-message": Case(
        _reply(403, body={"message": "Missing Permissions", "code": 50013}),
        "fail",
        reason_has="Missing Permissions",
    ),
    "404-fails-with-discord-message": Case(
        _reply(404, body={"message": "Unknown Webhook", "code": 10015}),
        "fail",
        reason_has="Unknown Webhook",
    ),
    "read-timeout-retries": Case(_raise(httpx.ReadTimeout), "retry", reason_has="timed out"),
    "connect-timeout-retries": Case(_raise(httpx.ConnectTimeout), "retry"),
    "connect-error-retries": Case(_raise(httpx.ConnectError), "retry", reason_has="ConnectError"),
    "remote-protocol-error-retries": Case(_raise(httpx.RemoteProtocolError), "retry"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_discord_answer_maps_to_ok_retry_or_fail(case: Case, tmp_path: Path) -> None:
    sent = _send(case.handler, tmp_path)

    assert sent.result.outcome == case.outcome
    assert sent.result.after == case.after
    assert sent.result.ref == case.ref
    assert case.reason_has in sent.result.reason
    assert len(sent.requests) == 1


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_webhook_token_never_appears_in_a_result(case: Case, tmp_path: Path) -> None:
    sent = _send(case.handler, tmp_path)

    assert TOKEN not in sent.result.reason
    assert TOKEN not in repr(sent.result)


def test_http_status_is_recorded_on_the_result(tmp_path: Path) -> None:
    assert _send(_ok_message, tmp_path).result.status_code == 200
    assert _send(_route_429, tmp_path).result.status_code == 429
    assert _send(_reply(404, body={"message": "Unknown Webhook"}), tmp_path).result.status_code == (
        404
    )


def test_error_reason_names_the_status_and_the_redacted_webhook(tmp_path: Path) -> None:
    sent = _send(_reply(400, body={"message": "Invalid Form Body", "code": 50035}), tmp_path)

    assert "400" in sent.result.reason
    assert "code 50035" in sent.result.reason
    assert "discord.com/api/webhooks/123/REDACTED" in sent.result.reason


def test_token_echoed_in_an_error_page_is_kept_out_of_the_reason(tmp_path: Path) -> None:
    # A proxy in front of Discord may answer with a page that quotes the request path.
    page = f"<html><body>502 Bad Gateway: POST /api/webhooks/123/{TOKEN}?wait=true</body></html>"

    sent = _send(_reply(502, text=page), tmp_path)

    assert sent.result.outcome == "retry"
    assert TOKEN not in sent.result.reason


def test_token_echoed_in_a_rate_limit_page_is_kept_out_of_the_reason(tmp_path: Path) -> None:
    page = f"Too many requests to /api/webhooks/123/{TOKEN}"

    sent = _send(_reply(429, text=page, headers={"Retry-After": "1"}), tmp_path)

    assert sent.result.after == 1.0
    assert TOKEN not in sent.result.reason


def test_retry_after_header_as_http_date_is_read_relative_to_now(tmp_path: Path) -> None:
    when = "Sat, 21 Nov 2026 10:00:30 GMT"

    sent = _send(_reply(429, text="slow down", headers={"Retry-After": when}), tmp_path)

    assert sent.result.after == 30.0


def test_destination_without_webhook_url_fails_without_a_request(tmp_path: Path) -> None:
    no_url = Destination(name="tasks", connector="discord", options={"username": "Switchboard"})

    sent = _send(_ok_message, tmp_path, destination=no_url)

    assert sent.result.outcome == "fail"
    assert "webhook_url" in sent.result.reason
    assert sent.requests == []


def test_missing_destination_fails_without_a_request(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, use_default_destination=False)

    assert sent.result.outcome == "fail"
    assert sent.requests == []


def test_webhook_url_with_an_invalid_port_fails_without_leaking_the_token(
    tmp_path: Path,
) -> None:
    bad = Destination(
        name="tasks",
        connector="discord",
        options={"webhook_url": Secret(f"https://discord.com:abc/api/webhooks/123/{TOKEN}")},
    )

    sent = _send(_ok_message, tmp_path, destination=bad)

    assert sent.result.outcome == "fail"
    assert "webhook_url" in sent.result.reason
    assert TOKEN not in sent.result.reason
    assert sent.requests == []


def test_webhook_url_without_http_scheme_fails_instead_of_retrying(tmp_path: Path) -> None:
    # The real transport raises UnsupportedProtocol for "discord.com/api/..." or "ftp://".
    sent = _send(_raise(httpx.UnsupportedProtocol), tmp_path)

    assert sent.result.outcome == "fail"
    assert "webhook_url" in sent.result.reason
    assert TOKEN not in sent.result.reason


# --- the request ---------------------------------------------------------------------------


def test_message_is_posted_to_the_webhook_with_wait_true(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path)

    [request] = sent.requests
    assert request.method == "POST"
    assert request.url.host == "discord.com"
    assert request.url.path == f"/api/webhooks/123/{TOKEN}"
    assert request.url.params["wait"] == "true"
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?thread_id=987", [("thread_id", "987"), ("wait", "true")]),
        ("?wait=true&thread_id=5", [("wait", "true"), ("thread_id", "5")]),
    ],
)
def test_a_webhook_url_keeps_its_own_query(
    tmp_path: Path, query: str, expected: list[tuple[str, str]]
) -> None:
    """Discord posts into a thread with `?thread_id=` on the webhook URL: it must survive."""
    destination = _destination(webhook_url=Secret(WEBHOOK_URL + query, origin="env:D"))
    sent = _send(_ok_message, tmp_path, destination=destination)

    [request] = sent.requests
    assert request.url.path == f"/api/webhooks/123/{TOKEN}"
    assert list(request.url.params.multi_items()) == expected
    assert sent.result.outcome == "ok"


def test_documented_request_shape_is_sent_as_given(tmp_path: Path) -> None:
    expected = _fixture_json("webhook.execute.request.json")
    params = {k: expected[k] for k in ("content", "username", "embeds")}

    sent = _send(_ok_message, tmp_path, params=params)

    assert sent.body == expected


def test_content_over_2000_characters_is_cut_with_an_ellipsis(tmp_path: Path) -> None:
    content = "x" * 1990 + "y" * 510

    sent = _send(_ok_message, tmp_path, params={"content": content})

    sent_content = sent.body["content"]
    assert len(sent_content) == 2000
    assert sent_content == content[:1999] + "…"


def test_content_of_exactly_2000_characters_is_sent_whole(tmp_path: Path) -> None:
    content = "z" * 2000

    sent = _send(_ok_message, tmp_path, params={"content": content})

    assert sent.body["content"] == content


def test_embed_title_over_256_characters_is_cut_with_an_ellipsis(tmp_path: Path) -> None:
    title = "T" * 300

    sent = _send(_ok_message, tmp_path, params={"embed": {"title": title}})

    assert sent.body["embeds"][0]["title"] == "T" * 255 + "…"


def test_embed_description_over_4096_characters_is_cut_with_an_ellipsis(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, params={"embed": {"description": "d" * 5000}})

    description = sent.body["embeds"][0]["description"]
    assert len(description) == 4096
    assert description.endswith("…")


def test_mentions_are_never_parsed(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, params={"content": "@everyone <@&1> look"})

    assert sent.body["allowed_mentions"] == {"parse": []}


def test_mentions_are_off_for_an_embed_only_message(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, params={"embed": {"title": "@here"}})

    assert sent.body["allowed_mentions"] == {"parse": []}
    assert "content" not in sent.body


def test_embed_comes_first_then_the_embeds_list(tmp_path: Path) -> None:
    params = {
        "content": "hi",
        "embed": {"title": "single"},
        "embeds": [{"title": "first of list"}, {"title": "second of list"}],
    }

    sent = _send(_ok_message, tmp_path, params=params)

    assert [e["title"] for e in sent.body["embeds"]] == [
        "single",
        "first of list",
        "second of list",
    ]


def test_at_most_ten_embeds_are_sent(tmp_path: Path) -> None:
    params = {"embed": {"title": "0"}, "embeds": [{"title": str(i)} for i in range(1, 12)]}

    sent = _send(_ok_message, tmp_path, params=params)

    assert [e["title"] for e in sent.body["embeds"]] == [str(i) for i in range(10)]


def test_username_defaults_to_the_destination_username(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, destination=_destination(username="Switchboard"))

    assert sent.body["username"] == "Switchboard"


def test_username_in_the_action_overrides_the_destination_username(tmp_path: Path) -> None:
    sent = _send(
        _ok_message,
        tmp_path,
        params={"content": "hi", "username": "Tasks Router"},
        destination=_destination(username="Switchboard"),
    )

    assert sent.body["username"] == "Tasks Router"


def test_no_username_is_sent_when_none_is_configured(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path)

    assert "username" not in sent.body


@pytest.mark.parametrize(
    ("color", "expected"),
    [
        (5763719, 5763719),
        ("5763719", 5763719),
        ("#57F287", 0x57F287),
        ("57f287", 0x57F287),
        ("#112233", 0x112233),
    ],
)
def test_embed_color_is_sent_as_an_integer(color: int | str, expected: int, tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, params={"embed": {"title": "t", "color": color}})

    assert sent.body["embeds"][0]["color"] == expected


def test_embed_color_that_is_not_a_colour_fails_without_a_request(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, params={"embed": {"title": "t", "color": "red"}})

    assert sent.result.outcome == "fail"
    assert "red" in sent.result.reason
    assert sent.requests == []


# --- connectors.base helpers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3.0, id="integer-seconds"),
        pytest.param("0.524", 0.524, id="float-seconds"),
        pytest.param(" 2 ", 2.0, id="surrounding-spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-5", 0.0, id="negative-is-zero"),
        pytest.param("Sat, 21 Nov 2026 10:00:30 GMT", 30.0, id="http-date-ahead"),
        pytest.param("Sat, 21 Nov 2026 11:00:00 GMT", 3600.0, id="http-date-an-hour-ahead"),
        pytest.param("Sat, 21 Nov 2026 09:59:00 GMT", 0.0, id="http-date-past-is-zero"),
        pytest.param("garbage", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param(None, None, id="absent"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="infinity"),
        pytest.param("1e999", None, id="overflow"),
        pytest.param("Mon, 32 Nov 2026 10:00:30 GMT", None, id="impossible-date"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date_depends_on_now() -> None:
    header = "Sat, 21 Nov 2026 10:01:00 GMT"
    later = datetime(2026, 11, 21, 10, 0, 45, tzinfo=UTC)

    assert parse_retry_after(header, now=NOW) == 60.0
    assert parse_retry_after(header, now=later) == 15.0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            WEBHOOK_URL,
            "https://discord.com/api/webhooks/123/REDACTED",
            id="discord-webhook-token",
        ),
        pytest.param(
            f"{WEBHOOK_URL}?wait=true",
            "https://discord.com/api/webhooks/123/REDACTED?wait=true",
            id="discord-webhook-with-query",
        ),
        pytest.param(
            f"https://discord.com/api/v10/webhooks/123/{TOKEN}/messages/456",
            "https://discord.com/api/v10/webhooks/123/REDACTED/messages/456",
            id="discord-webhook-message",
        ),
        pytest.param(
            "https://ada:hunter2@example.com/hook",
            "https://redacted@example.com/hook",
            id="userinfo",
        ),
        pytest.param(
            "https://example.com/hook?token=abc&page=2&sig=def",
            "https://example.com/hook?token=REDACTED&page=2&sig=REDACTED",
            id="signing-query-values",
        ),
        pytest.param(
            "https://example.com/hook?key=abc",
            "https://example.com/hook?key=REDACTED",
            id="key-query-value",
        ),
        pytest.param("https://example.com/plain", "https://example.com/plain", id="nothing-secret"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(httpx.URL(url)) == expected


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (201, "ok"),
        (204, "ok"),
        (299, "ok"),
        (400, "fail"),
        (401, "fail"),
        (403, "fail"),
        (404, "fail"),
        (410, "fail"),
        (422, "fail"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
    ],
)
def test_classify_status(status: int, outcome: str) -> None:
    result = classify_status(status, reason=f"answered {status}")

    assert result.outcome == outcome
    assert result.status_code == status
    if outcome != "ok":
        assert result.reason == f"answered {status}"


def test_classify_status_passes_the_wait_on_to_a_retry() -> None:
    assert classify_status(429, reason="slow down", after=2.5).after == 2.5
    assert classify_status(503, reason="down").after is None


# --- learning the bucket from the headers ---------------------------------------------------


def _ok_with_headers(remaining: str, reset_after: str) -> Handler:
    _, body, headers = _fixture_response(
        "webhook.execute.wait-true.message.json", "webhook.execute.ok.headers.json"
    )
    headers = {
        **headers,
        "X-RateLimit-Remaining": remaining,
        "X-RateLimit-Reset-After": reset_after,
    }
    return _reply(200, body=body, headers=headers)


def test_a_message_that_empties_the_bucket_pauses_the_destination(tmp_path: Path) -> None:
    sent = _send(_ok_with_headers("0", "1.750"), tmp_path)

    assert sent.result.outcome == "ok"
    assert sent.result.pause_s == pytest.approx(1.75)


def test_a_message_with_budget_left_does_not_pause(tmp_path: Path) -> None:
    _, _, real_headers = _fixture_response(
        "webhook.execute.wait-true.message.json", "webhook.execute.ok.headers.json"
    )
    sent = _send(_ok_with_headers(real_headers["X-RateLimit-Remaining"], "2.000"), tmp_path)

    assert sent.result.outcome == "ok"
    assert sent.result.pause_s is None


@pytest.mark.parametrize("reset_after", ["", "soon", "-1", "nan"])
def test_an_unreadable_reset_does_not_pause(reset_after: str, tmp_path: Path) -> None:
    assert _send(_ok_with_headers("0", reset_after), tmp_path).result.pause_s is None


def test_discord_declares_its_documented_webhook_limits() -> None:
    assert DiscordConnector.rate_limits == ((5, 2.0), (30, 60.0))


# --- upsert and bot mode ---------------------------------------------------------------------


def test_upsert_edits_the_message_sent_earlier_for_the_same_entity(tmp_path: Path) -> None:
    sent = _send(
        _ok_message,
        tmp_path,
        params={"content": "Status: Done", "mode": "upsert"},
        destination=_destination(),
        entity_refs={"": "1111"},
    )
    [request] = sent.requests
    assert request.method == "PATCH"
    assert request.url.path == f"/api/webhooks/123/{TOKEN}/messages/1111"
    assert json.loads(request.content)["content"] == "Status: Done"
    assert sent.result.outcome == "ok"


def test_upsert_without_an_earlier_message_posts_one(tmp_path: Path) -> None:
    sent = _send(
        _ok_message,
        tmp_path,
        params={"content": "new", "mode": "upsert"},
        destination=_destination(),
    )
    assert [r.method for r in sent.requests] == ["POST"]


def test_upsert_of_a_deleted_message_posts_a_new_one(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            return httpx.Response(404, json={"message": "Unknown Message", "code": 10008})
        return _ok_message(request)

    sent = _send(
        handler,
        tmp_path,
        params={"content": "again", "mode": "upsert"},
        destination=_destination(),
        entity_refs={"": "1111"},
    )
    assert [r.method for r in sent.requests] == ["PATCH", "POST"]
    assert sent.result.outcome == "ok"
    assert sent.result.ref == MESSAGE_ID


BOT_TOKEN = "bot-token-not-real"


def _bot_destination() -> Destination:
    return Destination(
        name="tasks",
        connector="discord",
        options={
            "bot_token": Secret(BOT_TOKEN, origin="env:DISCORD_BOT_TOKEN"),
            "channel_id": "1213445701632131072",
            "username": "ignored for bots",
        },
    )


def test_a_bot_posts_to_its_channel_with_its_token(tmp_path: Path) -> None:
    sent = _send(_ok_message, tmp_path, params={"content": "hello"}, destination=_bot_destination())
    [request] = sent.requests
    assert request.method == "POST"
    assert str(request.url) == "https://discord.com/api/v10/channels/1213445701632131072/messages"
    assert request.headers["authorization"] == f"Bot {BOT_TOKEN}"
    assert "username" not in json.loads(request.content)  # bots post under their own name
    assert sent.result.ref == MESSAGE_ID


def test_a_bot_upsert_edits_in_the_channel_and_never_leaks_its_token(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403, json={"message": f"Missing Access for {BOT_TOKEN}", "code": 50001}
        )

    sent = _send(
        handler,
        tmp_path,
        params={"content": "x", "mode": "upsert"},
        destination=_bot_destination(),
        entity_refs={"": "2222"},
    )
    [request] = sent.requests
    assert request.method == "PATCH"
    assert request.url.path == "/api/v10/channels/1213445701632131072/messages/2222"
    assert sent.result.outcome == "fail"
    assert BOT_TOKEN not in sent.result.reason
