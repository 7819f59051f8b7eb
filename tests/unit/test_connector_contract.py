"""The connector contract (STYLE.md "Contract suites"), run over every registered connector.

Each HTTP connector sends one concrete action, built from its schema's examples (templated
examples replaced by what a rule would render), to a `MockTransport` that answers the
status under test. The table is Alertmanager's `notify/test`: 2xx ok; 400, 401, 404 fail;
429 with `Retry-After` retried at that time; 5xx retried. No answer may echo a secret into
a reason, and a URL that must not be used fails without a retry.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from connectors.base import (
    Connector,
    ConnectorEnv,
    Destination,
    RenderedAction,
    SendResult,
)
from hub.plugins import load_plugins
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action

CONNECTORS = load_plugins().connectors
PUBLIC = "93.184.215.14"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
#: Every secret a destination gets; none may appear in a reason.
SECRET = "s3cr3t-token-value-0f9a"
#: A provider's error body.
ERROR_BODY = {"error": "invalid_request", "message": "invalid request", "ok": False}
#: Answers a 2xx with everything the connectors read from a success.
OK_BODY: dict[str, Any] = {
    "id": "1234567890",
    "ok": True,
    "ts": "1700000000.000100",
    "channel": "C06T4SK5Q2W",
    "html_url": "https://github.com/octo/repo/issues/1#issuecomment-1",
    "url": "https://www.notion.so/page",
    "object": "page",
    "htmlLink": "https://calendar.google.com/event?eid=1",
    "status": "confirmed",
    "access_token": "ya29.fresh",
    "expires_in": 3600,
    "token_type": "Bearer",
    "workspace_id": 7654321,
}


def _secret(ref: Any, value: str = SECRET) -> Any:
    """Destination options as config loading makes them: every secret reference a Secret."""
    if isinstance(ref, Mapping) and set(ref) <= {"env", "file", "optional"}:
        return Secret(value, origin=f"env:{ref.get('env', 'X')}")
    return ref


@dataclass(frozen=True)
class Case:
    """One connector's sendable action and the destination it goes to."""

    #: Action params taken from the schema's examples (the non-templated ones)...
    from_examples: tuple[str, ...]
    #: ...and what a rule would render for the templated ones.
    rendered: Mapping[str, Any] = field(default_factory=dict)
    operation: str | None = None
    destination: Mapping[str, Any] = field(default_factory=dict)
    #: Revealed values of secret options that are not just a token (a webhook URL).
    secrets: Mapping[str, str] = field(default_factory=dict)
    #: The request the status under test answers; the others (a token refresh) succeed.
    is_main: Callable[[httpx.Request], bool] = lambda request: True
    #: Param or option that holds the URL sent to, and URLs it must refuse: where a URL
    #: comes from an event or may point anywhere (config schemas check the others).
    url_key: tuple[str, str] | None = None
    bad_urls: tuple[str, ...] = ()
    build: Callable[[ConnectorEnv], Connector] | None = None


def _webhook(env: ConnectorEnv) -> Connector:
    from connectors.webhook import WebhookConnector  # the resolver seam: no DNS in unit tests

    def resolver(host: str, port: int) -> list[str]:
        return [host] if host[0].isdigit() else ["127.0.0.1" if host == "localhost" else PUBLIC]

    return WebhookConnector(env, resolver=resolver)


CASES: dict[str, Case] = {
    "discord": Case(
        ("channel", "username"),
        rendered={"content": "**Write launch post** was opened"},
        destination={"webhook_url": {"env": "DISCORD_WEBHOOK_URL"}},
        secrets={"webhook_url": "https://discord.com/api/webhooks/1/" + SECRET},
    ),
    "github": Case(
        ("account",),
        rendered={"repo": "octo/repo", "issue": 1, "body": "Closed from Notion"},
        operation="comment",
        destination={"token": {"env": "GITHUB_TOKEN"}},
    ),
    "notion": Case(
        ("workspace",),
        operation="comment",
        rendered={"page": "5c6a1f2e-9c3b-4d5e-a1f2-3b4c5d6e7f80", "text": "Closed on GitHub"},
        destination={"token": {"env": "NOTION_TOKEN"}},
    ),
    "toggl": Case(
        ("workspace", "project_id", "tags"),
        rendered={"description": "Write launch post"},
        operation="start",
        destination={"workspace_id": 7654321, "api_token": {"env": "TOGGL_API_TOKEN"}},
    ),
    "gcal": Case(
        ("calendar", "end", "location"),
        rendered={"summary": "Review", "start": "2026-11-24T15:00:00+01:00"},
        operation="create",
        destination={
            "calendar_id": "primary",
            "client_id": "1234567890-abc.apps.googleusercontent.com",
            "client_secret": {"env": "GOOGLE_CLIENT_SECRET"},
            "refresh_token": {"env": "GOOGLE_REFRESH_TOKEN"},
        },
        is_main=lambda request: not request.url.path.endswith("/token"),
    ),
    "reply": Case(
        ("visibility",),
        rendered={
            "url": f"https://discord.com/api/v10/webhooks/1/{SECRET}",
            "kind": "discord.interaction",
            "text": "3 open tasks",
        },
        url_key=("param", "url"),
        bad_urls=(
            "not a url",
            "http://discord.com/api/v10/webhooks/1/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://discord.com.evil.example/api/webhooks/1/x",
        ),
    ),
    "webhook": Case(
        ("to", "content_type", "method"),
        rendered={"body": '{"a": 1}'},
        destination={
            "url": "https://hooks.example.com/switchboard",
            "secret": {"env": "ORDERS_HOOK_SECRET"},
        },
        secrets={"secret": "whsec_" + base64.b64encode(SECRET.encode()).decode()},
        url_key=("option", "url"),
        bad_urls=(
            "http://127.0.0.1:6379/",
            "http://localhost/admin",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.7/",
            "ftp://files.example.com/x",
        ),
        build=_webhook,
    ),
}
NOT_HTTP = {
    "email": "speaks SMTP: tests/unit/connectors/test_email*.py run it against aiosmtpd",
    "log": "writes a local file: tests/unit/connectors/test_log.py",
    "slack": "slack-sdk's own aiohttp client, not an httpx transport: "
    "tests/unit/connectors/test_slack.py runs this table against tests/fakes/slack.py",
}


def test_every_registered_connector_is_covered() -> None:
    assert sorted(CONNECTORS) == sorted([*CASES, *NOT_HTTP])


def _action(name: str, case: Case, **changes: Any) -> RenderedAction:
    schema = CONNECTORS[name].params_schema
    params = {key: schema["properties"][key]["examples"][0] for key in case.from_examples}
    assert not any("{{" in str(v) for v in params.values()), f"{name}: a templated example"
    return rendered_action(
        name,
        params.get(CONNECTORS[name].destination_param or ""),
        {**params, **case.rendered, **changes},
        operation=case.operation,
    )


def _destination(name: str, case: Case, **changes: Any) -> Destination:
    action = _action(name, case)
    secrets = {**case.secrets, **{k: v for k, v in changes.items() if k in case.secrets}}
    options = {k: _secret(v, secrets.get(k, SECRET)) for k, v in case.destination.items()}
    options |= {k: v for k, v in changes.items() if k not in case.secrets}
    return Destination(name=action.destination or name, connector=name, options=options)


def _send(
    name: str,
    answer: Callable[[httpx.Request], httpx.Response],
    *,
    action: RenderedAction | None = None,
    destination: Destination | None = None,
) -> tuple[SendResult, list[httpx.Request]]:
    case = CASES[name]
    action = action or _action(name, case)
    destination = destination or _destination(name, case)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if case.is_main(request):
            return answer(request)
        return httpx.Response(200, json=OK_BODY)

    ctx = delivery_context(destination, now=NOW, rule_id="contract", idempotency_key="5f2b" * 16)

    async def run() -> SendResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            env = ConnectorEnv(http=http, base_dir=Path("."))
            connector = case.build(env) if case.build else CONNECTORS[name](env)
            return await connector.send(action, ctx)

    return asyncio.run(run()), seen


HTTP = sorted(CASES)


@pytest.mark.parametrize("name", HTTP)
def test_the_sent_action_is_valid_by_the_schema(name: str) -> None:
    action = _action(name, CASES[name])
    Draft202012Validator(CONNECTORS[name].params_schema).validate(dict(action.params))
    destination_schema = CONNECTORS[name].destination_schema
    Draft202012Validator(destination_schema).validate(dict(CASES[name].destination))


RETRY_TABLE = [
    pytest.param(200, {}, "ok", None, id="200-ok"),
    pytest.param(400, {}, "fail", None, id="400-fail"),
    pytest.param(401, {}, "fail", None, id="401-fail"),
    pytest.param(404, {}, "fail", None, id="404-fail"),
    pytest.param(429, {"Retry-After": "7"}, "retry", 7.0, id="429-retry-after"),
    pytest.param(500, {}, "retry", None, id="500-retry"),
    pytest.param(503, {}, "retry", None, id="503-retry"),
]


@pytest.mark.parametrize("name", HTTP)
@pytest.mark.parametrize(("status", "headers", "outcome", "after"), RETRY_TABLE)
def test_the_retry_table(
    name: str, status: int, headers: dict[str, str], outcome: str, after: float | None
) -> None:
    body = OK_BODY if status < 300 else ERROR_BODY

    result, seen = _send(name, lambda _: httpx.Response(status, headers=headers, json=body))

    assert seen, f"{name} sent nothing"
    assert result.outcome == outcome, result
    if after is not None:
        assert result.after == after, result
    assert SECRET not in result.reason
    assert SECRET not in (result.ref or "")


@pytest.mark.parametrize("name", HTTP)
@pytest.mark.parametrize(
    "error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError]
)
def test_a_network_error_is_retried_without_a_secret(
    name: str, error: type[httpx.TransportError]
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise error(f"failed to reach {request.url}", request=request)

    result, _ = _send(name, broken)

    assert result.outcome == "retry", result
    assert SECRET not in result.reason


BAD_URLS = [
    pytest.param(name, url, id=f"{name}-{url}")
    for name, case in sorted(CASES.items())
    for url in case.bad_urls
]


@pytest.mark.parametrize(("name", "url"), BAD_URLS)
def test_a_url_that_must_not_be_used_fails_without_a_request(name: str, url: str) -> None:
    case = CASES[name]
    assert case.url_key is not None
    where, key = case.url_key
    action = _action(name, case, **({key: url} if where == "param" else {}))
    destination = _destination(name, case, **({key: url} if where == "option" else {}))

    result, seen = _send(
        name, lambda _: httpx.Response(200, json=OK_BODY), action=action, destination=destination
    )

    assert result.outcome == "fail", result
    assert seen == []
