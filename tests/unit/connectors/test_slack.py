"""SlackConnector through slack-sdk against a local fake of the Web API and a webhook."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from connectors._slack_message import build_message
from connectors.base import (
    Connector,
    ConnectorEnv,
    Destination,
    RenderedAction,
    SendResult,
)
from connectors.slack import SlackConnector
from hub.rules import load_ruleset, match_rules, render_actions
from hub.rules.templates import TemplateEngine
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action
from tests.fakes.slack import (
    BOT_TOKEN,
    CHANNEL_ID,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    FakeSlack,
    Received,
    Reply,
    fixture_json,
)
from tests.servers import serve_in_thread
from tests.support import free_port

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
ENTITY = "notion/workspace/acme|task|153104cd"
#: The Block Kit blocks of the recorded chat.postMessage answer, as a rule would give them.
TASK_BLOCKS: list[dict[str, Any]] = fixture_json("chat.postMessage.ok.json")["message"]["blocks"]


@dataclass
class Slack:
    """The running fake and the URLs to reach it."""

    fake: FakeSlack
    url: str

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}{WEBHOOK_SECRET}"


@pytest.fixture(scope="module")
def served() -> Iterator[Slack]:
    fake = FakeSlack()
    with serve_in_thread(fake.app()) as url:
        yield Slack(fake, url)
        fake.reset()  # let a hanging handler return so the server can stop


@pytest.fixture
def slack(served: Slack) -> Slack:
    served.fake.reset()
    return served


def _bot(slack: Slack, *, token: str = BOT_TOKEN, **options: Any) -> Destination:
    return Destination(
        name="tasks",
        connector="slack",
        options={
            "bot_token": Secret(token, origin="env:SLACK_BOT_TOKEN"),
            "channel": CHANNEL_ID,
            "base_url": f"{slack.url}/api/",
            "timeout_s": 2,
            **options,
        },
    )


def _webhook(url: str, **options: Any) -> Destination:
    return Destination(
        name="tasks",
        connector="slack",
        options={"webhook_url": Secret(url, origin="env:SLACK_WEBHOOK_URL"), **options},
    )


@dataclass
class Sent:
    result: SendResult
    requests: list[Received] = field(default_factory=list)

    @property
    def body(self) -> dict[str, Any]:
        assert len(self.requests) == 1, self.requests
        return self.requests[0].body


def _send(
    slack: Slack,
    destination: Destination | None,
    *,
    params: Mapping[str, Any] | None = None,
    operation: str | None = None,
    refs: Mapping[str, str] | None = None,
    previous_ref: str | None = None,
) -> Sent:
    before = len(slack.fake.received)
    action = rendered_action(
        "slack",
        "tasks",
        params if params is not None else {"text": "Task done"},
        operation=operation,
        destination_param="channel",
    )
    ctx = delivery_context(
        destination,
        now=NOW,
        rule_id="task-done",
        previous_ref=previous_ref,
        entity_key=ENTITY,
        entity_refs=refs,
    )

    async def run() -> SendResult:
        async with httpx.AsyncClient() as http:
            connector = SlackConnector(ConnectorEnv(http=http, base_dir=Path()))
            return await connector.send(action, ctx)

    result = asyncio.run(run())
    return Sent(result, slack.fake.received[before:])


# --- what the Web API's answer means ----------------------------------------------------


@dataclass(frozen=True)
class Case:
    given: Callable[[FakeSlack], None]
    outcome: str
    reason_has: str = ""
    after: float | None = None


def _error(error: str, status: int = 200, **extra: Any) -> Callable[[FakeSlack], None]:
    return lambda fake: fake.fail_next(error, status=status, **extra)


def _raw(status: int, raw: bytes, content_type: str) -> Callable[[FakeSlack], None]:
    return lambda fake: fake.raw_next(status, raw, content_type)


API_CASES: dict[str, Case] = {
    "429-ratelimited-retries-after-its-retry-after": Case(
        FakeSlack.rate_limit_next, "retry", "rate limited", after=1.0
    ),
    "ratelimited-in-a-200-body-retries": Case(_error("ratelimited"), "retry", "rate limited"),
    "channel_not_found-fails-naming-the-channel-setting": Case(
        lambda fake: fake.script.append(
            Reply(200, fixture_json("chat.postMessage.channel_not_found.json"))
        ),
        "fail",
        "channel_not_found; check the destination's `channel`",
    ),
    "not_in_channel-fails-asking-to-invite-the-app": Case(
        _error("not_in_channel"), "fail", "/invite"
    ),
    "is_archived-fails": Case(_error("is_archived"), "fail", "archived"),
    "missing_scope-fails-naming-the-needed-scope": Case(
        _error("missing_scope", needed="chat:write", provided="channels:read"),
        "fail",
        "lacks the scope chat:write",
    ),
    "token_revoked-fails-naming-the-secret": Case(
        _error("token_revoked"), "fail", "bot_token (env:SLACK_BOT_TOKEN)"
    ),
    "invalid_blocks-fails-with-slacks-explanation": Case(
        _error("invalid_blocks", errors=["must be less than 3001 characters"]),
        "fail",
        "must be less than 3001 characters",
    ),
    "msg_too_long-fails": Case(_error("msg_too_long"), "fail", "fix the rule's text or blocks"),
    "restricted_action-fails": Case(_error("restricted_action"), "fail", "does not let"),
    "unknown-error-with-200-fails": Case(_error("something_new"), "fail", "something_new"),
    "internal_error-retries": Case(_error("internal_error"), "retry", "internal_error"),
    "fatal_error-retries": Case(_error("fatal_error"), "retry", "fatal_error"),
    "service_unavailable-503-retries": Case(_error("service_unavailable", 503), "retry"),
    "team_added_to_org-retries": Case(_error("team_added_to_org"), "retry"),
    "unknown-error-with-500-retries": Case(_error("something_new", 500), "retry"),
    "500-html-page-retries": Case(
        _raw(500, b"<html>Internal Server Error</html>", "text/html"), "retry", "500"
    ),
    "502-text-retries": Case(_raw(502, b"Bad Gateway", "text/plain"), "retry", "502"),
    "404-from-a-wrong-base-url-fails": Case(
        _raw(404, b"<html>Not Found</html>", "text/html"), "fail", "404"
    ),
    "200-html-from-a-proxy-retries": Case(
        _raw(200, b"<html>captive portal</html>", "text/html"), "retry", "no Slack answer"
    ),
    "200-broken-json-retries": Case(
        _raw(200, b'{"ok": tru', "application/json"), "retry", "non-JSON"
    ),
    "200-json-list-retries": Case(_raw(200, b"[1, 2]", "application/json"), "retry"),
    "200-ok-false-without-error-retries": Case(
        _raw(200, b'{"ok": false}', "application/json"), "retry"
    ),
    "hang-retries-as-a-timeout": Case(FakeSlack.hang_next, "retry", "timed out"),
}


@pytest.mark.parametrize("case", API_CASES.values(), ids=API_CASES.keys())
def test_web_api_answer_maps_to_retry_or_fail(case: Case, slack: Slack) -> None:
    case.given(slack.fake)

    sent = _send(slack, _bot(slack, timeout_s=0.2))

    assert sent.result.outcome == case.outcome, sent.result
    assert case.reason_has in sent.result.reason
    assert sent.result.after == case.after
    assert "destination 'tasks'" in sent.result.reason


@pytest.mark.parametrize("case", API_CASES.values(), ids=API_CASES.keys())
def test_bot_token_never_appears_in_a_result(case: Case, slack: Slack) -> None:
    case.given(slack.fake)

    sent = _send(slack, _bot(slack, timeout_s=0.2))

    assert BOT_TOKEN not in repr(sent.result)


def test_token_echoed_by_a_proxy_page_is_kept_out_of_the_reason(slack: Slack) -> None:
    page = f"<html>upstream refused Authorization: Bearer {BOT_TOKEN}</html>".encode()
    slack.fake.raw_next(200, page, "application/json")  # not JSON despite its type

    sent = _send(slack, _bot(slack))

    assert sent.result.outcome == "retry"
    assert "upstream refused" in sent.result.reason
    assert BOT_TOKEN not in sent.result.reason


def test_wrong_bot_token_fails_as_invalid_auth_without_showing_it(slack: Slack) -> None:
    sent = _send(slack, _bot(slack, token="xoxb-wrong-token-value"))

    assert sent.result.outcome == "fail"
    assert "invalid_auth" in sent.result.reason
    assert "check the destination's bot_token (env:SLACK_BOT_TOKEN)" in sent.result.reason
    assert "xoxb-wrong-token-value" not in sent.result.reason


def test_unknown_channel_fails_with_slacks_channel_not_found(slack: Slack) -> None:
    sent = _send(slack, _bot(slack, channel="C0000000000"))

    assert sent.result.outcome == "fail"
    assert "channel_not_found" in sent.result.reason


def test_connection_refused_retries(slack: Slack) -> None:
    closed = _bot(slack, base_url=f"http://127.0.0.1:{free_port()}/api/")

    sent = _send(slack, closed)

    assert sent.result.outcome == "retry"
    assert "could not reach" in sent.result.reason


@pytest.mark.parametrize("base_url", ["slack.com/api/", "ftp://slack.com/api/"])
def test_base_url_that_is_not_http_fails_instead_of_retrying(base_url: str, slack: Slack) -> None:
    sent = _send(slack, _bot(slack, base_url=base_url))

    assert sent.result.outcome == "fail"
    assert "base_url" in sent.result.reason


def test_ok_without_channel_or_ts_is_ok_without_a_ref(slack: Slack) -> None:
    # Slack posted the message: a retry would post it twice, so it is not retried.
    slack.fake.raw_next(200, b'{"ok": true}', "application/json")

    sent = _send(slack, _bot(slack))

    assert sent.result.outcome == "ok"
    assert sent.result.ref is None


# --- the request and the ref ------------------------------------------------------------


def test_post_sends_text_and_blocks_with_the_bot_token(slack: Slack) -> None:
    params = {"text": "Write launch post: In progress", "blocks": TASK_BLOCKS}

    sent = _send(slack, _bot(slack), params=params)

    [request] = sent.requests
    assert request.path == "/api/chat.postMessage"
    assert request.authorization == f"Bearer {BOT_TOKEN}"
    assert request.body == {
        "channel": CHANNEL_ID,
        "text": "Write launch post: In progress",
        "blocks": TASK_BLOCKS,
    }
    assert sent.result.outcome == "ok"
    assert sent.result.status_code == 200
    [(channel, ts)] = slack.fake.messages
    assert sent.result.ref == f"{channel}:{ts}"


def test_text_fallback_is_taken_from_the_blocks(slack: Slack) -> None:
    sent = _send(slack, _bot(slack), params={"blocks": TASK_BLOCKS})

    assert sent.body["text"] == TASK_BLOCKS[0]["text"]["text"]
    assert sent.body["blocks"] == TASK_BLOCKS


def test_options_are_passed_on_and_reply_broadcast_only_in_a_thread(slack: Slack) -> None:
    params = {
        "text": "hi",
        "unfurl_links": False,
        "unfurl_media": False,
        "username": "Tasks Router",
        "icon_emoji": ":white_check_mark:",
        "reply_broadcast": True,
    }

    sent = _send(slack, _bot(slack), params=params)

    assert sent.body == {
        "channel": CHANNEL_ID,
        "text": "hi",
        "unfurl_links": False,
        "unfurl_media": False,
        "username": "Tasks Router",
        "icon_emoji": ":white_check_mark:",
    }


def test_long_text_and_section_text_are_cut_with_an_ellipsis() -> None:
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3100}}
    header: dict[str, Any] = {"type": "header", "text": {"type": "plain_text", "text": "h" * 200}}

    message = build_message({"text": "t" * 40_500, "blocks": [header, section]})

    assert message.text == "t" * 39_999 + "…"
    assert message.blocks is not None
    assert message.blocks[0]["text"]["text"] == "h" * 149 + "…"
    assert message.blocks[1]["text"] == {"type": "mrkdwn", "text": "s" * 2999 + "…"}
    assert section["text"]["text"] == "s" * 3100  # the rendered params are not changed


# --- modes: upsert and thread -----------------------------------------------------------


def test_upsert_without_an_earlier_message_posts_one(slack: Slack) -> None:
    sent = _send(slack, _bot(slack), params={"text": "v1", "mode": "upsert"})

    assert sent.requests[0].path == "/api/chat.postMessage"
    assert sent.result.outcome == "ok"


def test_upsert_edits_the_entitys_earlier_message(slack: Slack) -> None:
    first = _send(slack, _bot(slack), params={"text": "In progress", "blocks": TASK_BLOCKS})
    assert first.result.ref is not None

    second = _send(
        slack, _bot(slack), params={"text": "Done", "mode": "upsert"}, refs={"": first.result.ref}
    )

    [request] = second.requests
    channel, ts = first.result.ref.split(":")
    assert request.path == "/api/chat.update"
    assert request.body == {"channel": channel, "ts": ts, "text": "Done", "blocks": []}
    assert second.result.ref == first.result.ref
    assert slack.fake.messages[(channel, ts)]["text"] == "Done"
    assert len(slack.fake.messages) == 1


def test_upsert_of_a_deleted_message_posts_a_new_one(slack: Slack) -> None:
    gone = f"{CHANNEL_ID}:1763719100.000100"

    sent = _send(slack, _bot(slack), params={"text": "Done", "mode": "upsert"}, refs={"": gone})

    assert [r.path for r in sent.requests] == ["/api/chat.update", "/api/chat.postMessage"]
    assert sent.result.outcome == "ok"
    assert sent.result.ref not in (None, gone)


def test_upsert_after_thread_replies_edits_the_thread_root(slack: Slack) -> None:
    root = _send(slack, _bot(slack), params={"text": "Task"}).result.ref
    assert root is not None
    reply = _send(slack, _bot(slack), params={"text": "c", "mode": "thread"}, refs={"": root})
    assert reply.result.ref is not None

    sent = _send(
        slack,
        _bot(slack),
        params={"text": "Task (done)", "mode": "upsert"},
        refs={"": reply.result.ref},
    )

    assert sent.requests[0].body["ts"] == root.split(":")[1]
    assert sent.result.ref == root


def test_thread_replies_in_the_thread_of_the_entitys_first_message(slack: Slack) -> None:
    root = _send(slack, _bot(slack), params={"text": "Task"}).result.ref
    assert root is not None
    root_ts = root.split(":")[1]

    first = _send(
        slack,
        _bot(slack),
        params={"text": "comment 1", "mode": "thread", "reply_broadcast": True},
        refs={"": root},
    )
    assert first.result.ref is not None
    second = _send(
        slack,
        _bot(slack),
        params={"text": "comment 2", "mode": "thread"},
        refs={"": first.result.ref},
    )

    assert first.body["thread_ts"] == root_ts
    assert first.body["reply_broadcast"] is True
    assert second.body["thread_ts"] == root_ts  # never a reply's ts (Slack's advice)
    reply_ts = first.result.ref.split(":")[1]
    assert first.result.ref == f"{CHANNEL_ID}:{reply_ts}:{root_ts}"


def test_thread_without_an_earlier_message_starts_one(slack: Slack) -> None:
    sent = _send(slack, _bot(slack), params={"text": "Task", "mode": "thread"})

    assert "thread_ts" not in sent.body
    assert sent.result.ref is not None
    assert sent.result.ref.count(":") == 1


def test_operation_names_the_mode(slack: Slack) -> None:
    root = _send(slack, _bot(slack), params={"text": "v1"}).result.ref
    assert root is not None

    sent = _send(slack, _bot(slack), params={"text": "v2"}, operation="upsert", refs={"": root})

    assert sent.requests[0].path == "/api/chat.update"


def test_unknown_operation_fails_without_a_request(slack: Slack) -> None:
    sent = _send(slack, _bot(slack), operation="delete")

    assert sent.result.outcome == "fail"
    assert "delete" in sent.result.reason
    assert sent.requests == []


def test_resend_of_a_delivered_message_edits_it_instead_of_posting_twice(slack: Slack) -> None:
    first = _send(slack, _bot(slack), params={"text": "v1"})

    again = _send(slack, _bot(slack), params={"text": "v1"}, previous_ref=first.result.ref)

    assert again.requests[0].path == "/api/chat.update"
    assert again.result.ref == first.result.ref
    assert len(slack.fake.messages) == 1


def test_refs_from_another_channel_are_not_edited(slack: Slack) -> None:
    elsewhere = "C0OTHERCHAN:1763719100.000100"

    sent = _send(slack, _bot(slack), params={"text": "v2", "mode": "upsert"}, refs={"": elsewhere})

    assert [r.path for r in sent.requests] == ["/api/chat.postMessage"]


def test_ref_that_is_not_a_slack_ref_is_ignored(slack: Slack) -> None:
    sent = _send(slack, _bot(slack), params={"text": "v2", "mode": "upsert"}, refs={"": "42"})

    assert [r.path for r in sent.requests] == ["/api/chat.postMessage"]


# --- incoming webhook -------------------------------------------------------------------


def test_webhook_posts_text_and_blocks_without_a_ref(slack: Slack) -> None:
    sent = _send(slack, _webhook(slack.webhook_url), params={"text": "hi", "blocks": TASK_BLOCKS})

    assert sent.result.outcome == "ok"
    assert sent.result.ref is None
    assert sent.body == {"text": "hi", "blocks": TASK_BLOCKS}
    assert sent.requests[0].authorization is None


WEBHOOK_CASES: dict[str, tuple[Callable[[FakeSlack], None], str, str, float | None]] = {
    "404-channel_not_found-fails": (
        lambda f: f.webhook_fail_next(404, "channel_not_found"),
        "fail",
        "channel is gone or archived",
        None,
    ),
    "410-channel_is_archived-fails": (
        lambda f: f.webhook_fail_next(410, "channel_is_archived"),
        "fail",
        "channel_is_archived",
        None,
    ),
    "403-invalid_token-fails": (
        lambda f: f.webhook_fail_next(403, "invalid_token"),
        "fail",
        "revoked",
        None,
    ),
    "403-action_prohibited-fails": (
        lambda f: f.webhook_fail_next(403, "action_prohibited"),
        "fail",
        "forbids",
        None,
    ),
    "400-invalid_payload-fails": (
        lambda f: f.webhook_fail_next(400, "invalid_payload"),
        "fail",
        "fix the rule's text or blocks",
        None,
    ),
    "429-retries-after-retry-after": (
        lambda f: f.webhook_fail_next(429, "rate_limited", **{"Retry-After": "30"}),
        "retry",
        "rate limited",
        30.0,
    ),
    "500-rollup_error-retries": (
        lambda f: f.webhook_fail_next(500, "rollup_error"),
        "retry",
        "rollup_error",
        None,
    ),
    "hang-retries-as-a-timeout": (FakeSlack.hang_next, "retry", "timed out", None),
}


@pytest.mark.parametrize("case", WEBHOOK_CASES.values(), ids=WEBHOOK_CASES.keys())
def test_webhook_answer_maps_to_retry_or_fail(
    case: tuple[Callable[[FakeSlack], None], str, str, float | None], slack: Slack
) -> None:
    given, outcome, reason_has, after = case
    given(slack.fake)

    sent = _send(slack, _webhook(slack.webhook_url, timeout_s=0.2))

    assert sent.result.outcome == outcome
    assert reason_has in sent.result.reason
    assert sent.result.after == after
    assert WEBHOOK_SECRET not in repr(sent.result)


def test_revoked_webhook_fails_as_no_service(slack: Slack) -> None:
    url = f"{slack.url}{WEBHOOK_PATH}revoked-secret-value"

    sent = _send(slack, _webhook(url))

    assert sent.result.outcome == "fail"
    assert "no_service" in sent.result.reason
    assert "revoked-secret-value" not in sent.result.reason


def test_webhook_path_echoed_in_an_error_page_is_redacted(slack: Slack) -> None:
    page = f"<html>bad gateway for POST {WEBHOOK_PATH}{WEBHOOK_SECRET}</html>".encode()
    slack.fake.raw_next(502, page, "text/html")

    sent = _send(slack, _webhook(slack.webhook_url))

    assert sent.result.outcome == "retry"
    assert "bad gateway" in sent.result.reason
    assert WEBHOOK_SECRET not in sent.result.reason


def test_unreachable_webhook_retries_without_showing_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}{WEBHOOK_SECRET}"
    unused = Slack(FakeSlack(), "http://127.0.0.1")

    sent = _send(unused, _webhook(url))

    assert sent.result.outcome == "retry"
    assert WEBHOOK_SECRET not in repr(sent.result)


@pytest.mark.parametrize(
    "url",
    [
        f"hooks.slack.com{WEBHOOK_PATH}{WEBHOOK_SECRET}",
        f"ftp://hooks.slack.com{WEBHOOK_PATH}{WEBHOOK_SECRET}",
        f"https://hooks.slack.com:abc{WEBHOOK_PATH}{WEBHOOK_SECRET}",
    ],
    ids=["no-scheme", "ftp", "bad-port"],
)
def test_webhook_url_that_is_not_http_fails_without_showing_it(url: str) -> None:
    unused = Slack(FakeSlack(), "http://127.0.0.1")

    sent = _send(unused, _webhook(url))

    assert sent.result.outcome == "fail"
    assert "webhook_url" in sent.result.reason
    assert WEBHOOK_SECRET not in sent.result.reason


@pytest.mark.parametrize("mode", ["upsert", "thread"])
def test_webhook_cannot_upsert_or_thread(mode: str, slack: Slack) -> None:
    sent = _send(slack, _webhook(slack.webhook_url), params={"text": "x", "mode": mode})

    assert sent.result.outcome == "fail"
    assert "needs a bot_token destination" in sent.result.reason
    assert sent.requests == []


# --- destination and schemas ------------------------------------------------------------


def test_missing_destination_fails_without_a_request(slack: Slack) -> None:
    sent = _send(slack, None)

    assert sent.result.outcome == "fail"
    assert sent.requests == []


def test_destination_without_a_token_or_webhook_fails(slack: Slack) -> None:
    empty = Destination(name="tasks", connector="slack", options={"channel": CHANNEL_ID})

    sent = _send(slack, empty)

    assert sent.result.outcome == "fail"
    assert "neither a bot_token nor a webhook_url" in sent.result.reason


def test_connector_meets_the_plugin_protocol() -> None:
    async def build() -> SlackConnector:
        async with httpx.AsyncClient() as http:
            return SlackConnector(ConnectorEnv(http=http, base_dir=Path()))

    assert isinstance(asyncio.run(build()), Connector)
    assert SlackConnector.name == "slack"
    assert SlackConnector.destination_param == "channel"
    assert SlackConnector.rate_limits == ((1, 1.0),)


def _examples(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {key: prop["examples"][0] for key, prop in schema["properties"].items()}


def test_the_first_examples_together_make_a_valid_action() -> None:
    # Each property's own examples: tests/unit/connectors/test_schema_contract.py.
    schema = SlackConnector.params_schema
    assert list(Draft202012Validator(schema).iter_errors(_examples(schema))) == []


@pytest.mark.parametrize(
    ("params", "valid"),
    [
        ({"channel": "tasks", "text": "hi"}, True),
        ({"channel": "tasks", "blocks": TASK_BLOCKS, "mode": "thread"}, True),
        ({"channel": "tasks"}, False),  # neither text nor blocks
        ({"channel": "tasks", "text": "hi", "mode": "edit"}, False),
        ({"channel": "tasks", "text": "hi", "color": 1}, False),
        ({"channel": "tasks", "blocks": [{"text": "no type"}]}, False),
    ],
)
def test_params_schema_accepts_and_refuses(params: dict[str, Any], valid: bool) -> None:
    errors = list(Draft202012Validator(SlackConnector.params_schema).iter_errors(params))

    assert (errors == []) is valid, errors


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({"bot_token": {"env": "SLACK_BOT_TOKEN"}, "channel": "C06T4SK5Q2W"}, True),
        ({"webhook_url": {"env": "SLACK_WEBHOOK_URL"}}, True),
        ({"bot_token": {"env": "SLACK_BOT_TOKEN"}}, True),  # a bot for DMs needs no channel
        (
            {
                "bot_token": {"env": "T"},
                "channel": "C06T4SK5Q2W",
                "webhook_url": {"env": "W"},
            },
            False,
        ),
        ({"webhook_url": "https://hooks.slack.com/services/T/B/x"}, False),  # not a secret ref
        ({"webhook_url": {"env": "W"}, "timeout_s": 0}, False),
    ],
)
def test_destination_schema_accepts_and_refuses(options: dict[str, Any], valid: bool) -> None:
    schema = SlackConnector.destination_schema
    Draft202012Validator.check_schema(schema)

    errors = list(Draft202012Validator(schema).iter_errors(options))

    assert (errors == []) is valid, errors


# --- the documented example, through the real rule engine ------------------------------


def _task_event(status_from: str, status_to: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ev-{status_to}",
        "source": "notion/workspace/acme",
        "type": "notion.page.properties_updated",
        "subject": "page/153104cd",
        "time": "2026-11-21T10:00:07Z",
        "datacontenttype": "application/json",
        "data": {
            "entity": {
                "kind": "task",
                "id": "153104cd",
                "title": "Write launch post",
                "url": "https://www.notion.so/Write-launch-post-153104cd",
            },
            "actor": {"id": None, "name": "Ada Lovelace", "email": None},
            "changes": {"Status": {"from": status_from, "to": status_to}},
            "fields": {"Status": status_to},
            "raw": None,
        },
    }


def test_documented_rules_render_block_kit_and_keep_one_card_per_task(
    slack: Slack, tmp_path: Path
) -> None:
    # Given the example rules of docs/connectors/slack.md, loaded by the real rule loader
    doc = (REPO / "docs" / "connectors" / "slack.md").read_text(encoding="utf-8")
    [rules] = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "rules:" in b]
    (tmp_path / "slack.yaml").write_text(rules, encoding="utf-8")
    ruleset = load_ruleset(
        tmp_path,
        connectors={"slack": SlackConnector},
        destinations={"task-notifications": Destination(name="tasks", connector="slack")},
        engine=TemplateEngine(),
    )
    refs: dict[str, str] = {}
    bodies: list[tuple[str, dict[str, Any]]] = []

    # When two status changes of one task are matched, rendered and sent in order
    for event in (_task_event("Not started", "In progress"), _task_event("In progress", "Done")):
        for rule in match_rules(ruleset, event):
            [(_, action)] = render_actions(rule, event)
            assert isinstance(action, RenderedAction)
            sent = _send(slack, _bot(slack), params=action.params, refs=refs)
            assert sent.result.outcome == "ok", sent.result
            assert sent.result.ref is not None
            refs[""] = sent.result.ref
            bodies += [(r.path.removeprefix("/api/"), r.body) for r in sent.requests]

    # Then the card is posted once and edited, and the changes are replies under it
    assert [method for method, _ in bodies] == [
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
    ]
    card, first_reply, edit, second_reply = (body for _, body in bodies)
    assert card["blocks"][0]["text"]["text"] == (
        "*<https://www.notion.so/Write-launch-post-153104cd|Write launch post>*\n"
        "Status: In progress"
    )
    assert edit["ts"] == first_reply["thread_ts"] == second_reply["thread_ts"]
    assert edit["text"] == "Write launch post: Done"
    assert second_reply["text"] == "In progress → Done by Ada Lovelace"
    assert len([m for m in slack.fake.messages.values() if "thread_ts" not in m]) == 1
